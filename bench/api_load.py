"""A small closed-loop HTTP/1.1 load generator for ``bench_api.py``, run in its own process.

The fallback when ``wrk`` is not installed: one asyncio event loop, ``clients`` keep-alive
connections, each sending its next request as soon as the previous answer is in (closed
loop, like ``wrk -c``). Standard library only and as lean as possible (hand-written
HTTP/1.1 over ``asyncio`` streams, no client library), so that it takes little CPU
from the server it measures; ``bench_api.py`` still prints the CPU it used.

Input: a JSON scenario on stdin::

    {"host": "127.0.0.1", "port": 8000, "clients": 16, "seconds": 10, "seed": 1,
     "headers": {"Authorization": "Bearer ..."},
     "get": ["/api/v1/cases/1", ...]}                 # GET one of these at random, or
     "fire": {"action": "notieren", "cases": [[[id, version], ...], ...]}   # one list per client

Output: one JSON line: requests, seconds, latencies in ms (p50, p99, mean, max), statuses.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:  # pragma: no cover - the API always sends a length
        raise RuntimeError("response without length")
    return status, headers, body


def _request(method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, clients, seconds = spec["host"], spec["port"], spec["clients"], float(spec["seconds"])
    base_headers = dict(spec.get("headers", {}))
    hostport = f"{host}:{port}"
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: dict[int, int] = {}
    gets = [_request("GET", hostport, p, base_headers) for p in spec.get("get", [])]
    fire = spec.get("fire")
    fire_headers = {**base_headers, "Content-Type": "application/json"}
    started = asyncio.Event()
    stop_at = [0.0]

    async def client(index: int) -> None:
        rng = random.Random(spec.get("seed", 1) * 1000 + index)
        reader, writer = await asyncio.open_connection(host, port)
        counter = 0
        mine = fire["cases"][index] if fire else []

        def next_request() -> tuple[bytes, list[int] | None]:
            nonlocal counter
            if not fire:
                return gets[rng.randrange(len(gets))], None
            counter += 1
            case = mine[counter % len(mine)]
            body = json.dumps({"data": {"note": f"n{index}-{counter}"}}).encode()
            path = f"/api/v1/cases/{case[0]}/actions/{fire['action']}"
            return _request("POST", hostport, path, {**fire_headers, "If-Match": f'"{case[1]}"'}, body), case

        async def one() -> int:
            raw, case = next_request()
            status, headers, _ = await _exchange(reader, writer, raw)
            if case is not None and status == 200 and b"etag" in headers:
                case[1] = int(headers[b"etag"].strip(b'"W/'))
            return status

        await one()  # warm the connection (not timed)
        await started.wait()
        own = latencies[index]
        try:
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                status = await one()
                own.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(0.5)  # let every connection warm up
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    started.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    every = sorted(x for part in latencies for x in part)

    def pct(q: float) -> float:
        return every[min(len(every) - 1, int(q * len(every)))] * 1000 if every else 0.0

    return {
        "requests": len(every),
        "seconds": elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "mean": sum(every) / len(every) * 1000 if every else 0.0,
        "max": every[-1] * 1000 if every else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main() -> None:
    spec = json.load(sys.stdin)
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
