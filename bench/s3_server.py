"""A loopback S3 server (moto, objects in memory) that counts what its clients ask of it.

    python bench/s3_server.py PORT

Every request is counted by method and operation (GET object, PUT object, HEAD, LIST, DELETE), with
the bytes received (request bodies) and sent (response bodies). `GET /__counts__` returns the
counts as JSON and `POST /__counts__` resets them; both are answered here, never by moto. Used by
bench/s3_side_by_side.py to measure the requests and bytes an s3:// store costs bqx.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from typing import Any, Callable, Iterable

COUNTS_PATH = "/__counts__"


class Counting:
    """WSGI middleware: counts requests and bytes, then hands the request to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: Counter[str] = Counter()
            self.bytes_in = 0
            self.bytes_out = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": dict(self.requests), "total_requests": sum(self.requests.values()),
                    "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            if environ["REQUEST_METHOD"] == "POST":
                self.reset()
            body = json.dumps(self.snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        key = environ.get("PATH_INFO", "").strip("/")
        has_key = "/" in key  # /bucket/key... (path-style addressing)
        op = {"GET": "LIST" if not has_key or "list-type" in query else "GET",
              "PUT": "PUT" if has_key else "CREATE_BUCKET", "HEAD": "HEAD", "DELETE": "DELETE",
              "POST": "POST"}.get(method, method)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        out = self.app(environ, start_response)
        sent = 0
        chunks = []
        for chunk in out:
            sent += len(chunk)
            chunks.append(chunk)
        if hasattr(out, "close"):
            out.close()
        with self.lock:
            self.requests[op] += 1
            self.bytes_in += length
            self.bytes_out += sent
        return chunks


def main(port: int) -> None:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = Counting(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"s3 server on http://127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
