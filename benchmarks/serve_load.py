"""Bounded load test of ``edge.serve`` on 127.0.0.1: N requests at concurrency C.

    python benchmarks/serve_load.py [--bundle edge/bundles/<name>-vN] [--requests 500]
                                    [--concurrency 8] [--image IMG]

Starts the server (uvicorn) in a subprocess, posts the image N times from C concurrent
clients, and prints latency percentiles, throughput and the error count. A benchmark figure,
not a test assertion on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


async def _load(url: str, image: bytes, n: int, concurrency: int) -> dict[str, float | int]:
    import httpx

    times: list[float] = []
    errors: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            queue.get_nowait()
            t = time.perf_counter()
            try:
                r = await http.post(f"{url}/predict", files={"file": ("img.jpg", image)})
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:100]}")
            except httpx.HTTPError as e:
                errors.append(repr(e))
            times.append((time.perf_counter() - t) * 1000)

    limits = httpx.Limits(max_connections=concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    q = np.percentile(times, [50, 90, 99])
    return {
        "requests": n,
        "concurrency": concurrency,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "p50_ms": float(q[0]),
        "p90_ms": float(q[1]),
        "p99_ms": float(q[2]),
        "throughput_rps": n / wall,
        "wall_s": wall,
    }


def run_load(url: str, image: bytes, n: int = 500, concurrency: int = 8) -> dict:
    return asyncio.run(_load(url, image, n, concurrency))


def start_server(bundle: Path, port: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "edge.serve", str(bundle), "--port", str(port), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--image", type=Path, default=None)
    args = ap.parse_args()
    bundle = args.bundle or max(
        (ROOT / "edge" / "bundles").glob("*-v*/"), key=lambda p: p.stat().st_mtime
    )
    golden = json.loads((bundle / "golden" / "golden.json").read_text())
    image = (args.image or bundle / "golden" / golden["cases"][0]["image"]).read_bytes()
    port = free_port()
    proc = start_server(bundle, port)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc)
        result = run_load(url, image, args.requests, args.concurrency)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(json.dumps({"bundle": str(bundle), **result}, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
