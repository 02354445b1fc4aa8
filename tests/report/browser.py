"""Headless Debian chromium driven over the DevTools protocol (websocket-client): load a page, wait for it
to draw, collect console errors, exceptions and network requests, take a full-page screenshot."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--window-size=1400,1000"]


def chromium() -> str:
    """The chromium binary; skipped when absent, except in CI (CI=true), where a missing browser fails."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@dataclass
class Loaded:
    state: dict[str, Any]  # what the page reported: rendered, errors, drawn per section, notes
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, error log entries
    requests: list[str] = field(default_factory=list)  # URLs fetched other than file: and data:
    seconds: float = 0.0  # navigation to every first-view chart drawn
    screenshot: bytes = b""


class Browser:
    def __init__(self) -> None:
        import websocket

        self.dir = tempfile.mkdtemp(prefix="bqx-chromium-")
        self.proc = subprocess.Popen([chromium(), *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={self.dir}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = []
        while not pages:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if not pages:
                time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expr: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        return res.get("result", {}).get("value")

    def load(self, path: Path, timeout: float = 120.0) -> Loaded:
        """Open the file, wait until the page sets data-rendered, then gather errors and a screenshot."""
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        self.events.clear()
        t0 = time.monotonic()
        self.call("Page.navigate", url=path.resolve().as_uri())
        state: dict[str, Any] = {}
        while time.monotonic() - t0 < timeout:
            state = self.evaluate(STATE_JS) or {}
            if state.get("rendered") is not None or state.get("errors") not in (None, "0"):
                break
            time.sleep(0.2)
        seconds = time.monotonic() - t0
        metrics = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": metrics["width"], "height": min(metrics["height"], 16000), "scale": 0.5})
        self.call("Runtime.evaluate", expression="0")  # flush events queued meanwhile
        return Loaded(state=state, errors=self._errors(), requests=self._requests(), seconds=seconds,
                      screenshot=base64.b64decode(shot["data"]))

    def _errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def _requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"
                and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))]

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)


STATE_JS = """(() => ({
  rendered: document.body ? (document.body.dataset.rendered ?? null) : null,
  errors: document.body ? (document.body.dataset.errors ?? null) : null,
  ms: document.body ? Number(document.body.dataset.ms || 0) : 0,
  drawn: Object.fromEntries(Array.from(document.querySelectorAll('section')).map(s => [s.id, Number(s.dataset.drawn || 0)])),
  charts: document.querySelectorAll('.chart').length,
  svgs: document.querySelectorAll('.chart .main-svg').length,
  notes: Object.fromEntries(Array.from(document.querySelectorAll('section')).map(
    s => [s.id, Array.from(s.querySelectorAll('.note')).map(n => n.textContent)])),
}))()"""
