"""The same run on a local store and on an s3:// store (a loopback S3 server), side by side, in one sitting.

    .venv/bin/python bench/s3_side_by_side.py [--pairs N] [--months 3] [--workers 2] [--dir /work/sbs] [--keep]

Both runs compute the sample market (`bqx run`, the default pairs, `--months` months from 2024-07)
as a user would, each in its own process, timed with /usr/bin/time. The S3 server is moto in its own
process (objects in memory) behind a counter (bench/s3_server.py): the S3 column reports the requests
and bytes bqx asked of it. The local column reports the bytes the store holds (what was written).

The loopback server measures bqx's own overhead of object storage (requests, copies, no page cache,
the manifest uploads), not a cloud's latency; estimate that from the request counts (see
docs/OBJECT_STORAGE.md). Prints a table and writes `side_by_side.json` in --dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BQX = [sys.executable, "-m", "bqx"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `cmd` under /usr/bin/time; wall, user+sys CPU seconds and the largest process's peak RSS."""
    fmt = "BQXTIME %e %U %S %M"
    proc = subprocess.run(["/usr/bin/time", "-f", fmt, *cmd], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("BQXTIME"))
    wall, user, system, rss = (float(v) for v in line.split()[1:])
    return {"wall_s": wall, "cpu_s": user + system, "peak_rss_gb": rss / 1e6}


def counts(endpoint: str, reset: bool = False) -> dict:
    req = urllib.request.Request(f"{endpoint}/__counts__", method="POST" if reset else "GET")
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def _cpu(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_bytes(root: Path) -> tuple[int, int]:
    n = size = 0
    for p in root.rglob("*"):
        if p.is_file():
            n += 1
            size += p.stat().st_size
    return size, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=28, help="the first N of the 28 pairs (default all)")
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dir", default="/tmp/bqx-side-by-side")
    ap.add_argument("--keep", action="store_true", help="keep the local store afterwards")
    args = ap.parse_args()

    from bqx.universe import PAIR_NAMES

    work = Path(args.dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    end = f"2024-{6 + args.months:02d}" if args.months <= 6 else None
    run_args = ["--quiet", "run", "--start", "2024-07", "--end", end or "2024-12", "--workers", str(args.workers),
                "--pairs", ",".join(PAIR_NAMES[: args.pairs])]

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, str(HERE / "s3_server.py"), str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None and "s3 server" in server.stdout.readline()
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                   AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(HERE.parent))
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                     aws_secret_access_key="bench").create_bucket(Bucket="bqx")

        local = work / "local-store"
        print(f"local: bqx {' '.join(run_args)} --store {local}", flush=True)
        res_local = timed([*BQX, *run_args, "--store", str(local)], env)
        res_local["store_bytes"], res_local["files"] = dir_bytes(local)

        url = "s3://bqx/side-by-side"
        counts(endpoint, reset=True)
        server_cpu0 = _cpu(server.pid)
        print(f"s3:    bqx {' '.join(run_args)} --store {url}", flush=True)
        res_s3 = timed([*BQX, *run_args, "--store", url], env)
        c = counts(endpoint)
        res_s3["server_cpu_s"] = _cpu(server.pid) - server_cpu0
        res_s3.update(requests=c["requests"], total_requests=c["total_requests"], bytes_in=c["bytes_in"],
                      bytes_out=c["bytes_out"])
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work / "local-store", ignore_errors=True)

    ratio = res_s3["wall_s"] / res_local["wall_s"]
    print(f"\n{'':24}{'local':>14}{'s3 (loopback)':>16}")
    for key, label in (("wall_s", "wall s"), ("cpu_s", "CPU s (user+sys)"), ("peak_rss_gb", "peak RSS GB")):
        print(f"{label:24}{res_local[key]:>14.1f}{res_s3[key]:>16.1f}")
    print(f"{'S3 server CPU s':24}{'-':>14}{res_s3['server_cpu_s']:>16.1f}")
    print(f"{'store bytes written':24}{res_local['store_bytes'] / 1e9:>13.2f}G{res_s3['bytes_in'] / 1e9:>15.2f}G")
    print(f"{'bytes read back':24}{'(page cache)':>14}{res_s3['bytes_out'] / 1e9:>15.2f}G")
    print(f"{'files / requests':24}{res_local['files']:>14}{res_s3['total_requests']:>16}")
    print(f"requests by kind: {res_s3['requests']}")
    print(f"s3 / local wall: {ratio:.2f}x (target <= 1.5x)")
    out = {"args": vars(args), "local": res_local, "s3": res_s3, "wall_ratio": ratio, "when": time.time()}
    (work / "side_by_side.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
