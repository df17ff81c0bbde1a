"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, no parsing beyond status and length).

Generic Python HTTP clients cost more CPU per request than the services they measure on a 2-core machine;
this one sends pre-built request bytes and reads only the status line, headers and Content-Length body.

- ``closed_loop``: N connections each send the next request when the last answered (throughput).
- ``open_loop``: requests are *scheduled* at a fixed rate and latency is measured from the scheduled time,
  so a slow server cannot slow the generator down and hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def percentile(values: list[float], q: float) -> float:
    """Exact nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def build_request(
    host: str, port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        if self.reader is None:
            raise ConnectionError("not connected")
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def closed_loop(
    *,
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    connections: int,
    duration: float,
    on_response: Callable[[int, int, bytes], None] | None = None,
) -> Result:
    result = Result()
    counter = 0
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal counter
        conn = Connection(host, port)
        while time.perf_counter() < deadline:
            counter += 1
            i = counter
            raw = make_request(i)
            started = time.perf_counter()
            try:
                status, body = await conn.request(raw)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                conn.close()
                continue
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if on_response is not None:
                on_response(i, status, body)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


async def open_loop(
    *,
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    rate: float,
    duration: float,
    max_connections: int = 256,
    on_response: Callable[[int, float, int, bytes], None] | None = None,
) -> Result:
    """Send request i at ``start + i / rate``; latency counts from that scheduled time."""
    result = Result()
    idle: list[Connection] = []
    in_flight = asyncio.Semaphore(max_connections)
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, scheduled: float) -> None:
        async with in_flight:
            conn = idle.pop() if idle else Connection(host, port)
            try:
                status, body = await conn.request(make_request(i))
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                conn.close()
                return
            idle.append(conn)
            done = time.perf_counter()
            result.latencies.append(done - scheduled)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if on_response is not None:
                on_response(i, scheduled, status, body)

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    for conn in idle:
        conn.close()
    return result
