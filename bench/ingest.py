"""Ingest throughput with durable acknowledgement, against a validate-only ceiling.

For each configuration a server process is started (uvicorn, one worker) and a light keep-alive HTTP/1.1
client holds 64 connections open for a fixed time, each sending the next request as soon as the previous
answer arrived. Every request carries new external ids and distinct texts, so every post is stored (no
duplicate shortcuts). Prints a Markdown table. Run: ``make bench-ingest`` (PostgreSQL too when
``BENCH_DATABASE_URL`` is set, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.auth import mint_dev_token
from shared.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-not-for-production-0123456789"  # noqa: S105 - a throwaway dev-token key
CONTENT_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)
RUN_ID = uuid.uuid4().hex[:8]
_counter = itertools.count()


def post_json(n: int) -> str:
    return (
        f'{{"platform":"webform","external_id":"b{RUN_ID}-{n}","account":"contact-us",'
        f'"text":"Request {n}: the streetlight outside number {n % 500} has been out since Monday",'
        f'"author":{{"id":"author-{n % 5000}"}},"created_at":"2026-11-26T09:00:00+11:00"}}'
    )


def request_bytes(path: str, body: str, token: str) -> bytes:
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {token}\r\ncontent-length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    requests: int
    posts: int
    errors: int
    seconds: float
    latencies: list[float]
    #: Server CPU seconds per 1,000 posts over the whole run (warm-up included): unlike requests/s, this
    #: barely depends on how much of the shared machine other processes took.
    cpu_ms_per_post: float = 0.0

    def row(self, name: str, endpoint: str) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        return (
            f"| {name} | {endpoint} | {self.requests / self.seconds:,.0f} | "
            f"{self.posts / self.seconds:,.0f} | {p50:.1f} | {p99:.1f} | {self.cpu_ms_per_post:.2f} | "
            f"{self.errors} |"
        )


async def load(
    port: int, *, pid: int, batch: int, token: str, connections: int, seconds: float, warmup: float
) -> Result:
    path = "/v1/posts:batch" if batch > 1 else "/v1/posts"
    expected = (207,) if batch > 1 else (202,)

    def next_request() -> bytes:
        if batch == 1:
            return request_bytes(path, post_json(next(_counter)), token)
        body = '{"posts":[' + ",".join(post_json(next(_counter)) for _ in range(batch)) + "]}"
        return request_bytes(path, body, token)

    start = time.perf_counter()
    measure_from = start + warmup
    deadline = measure_from + seconds
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0, "all": 0}
    cpu_start = cpu_seconds(pid)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (now := time.perf_counter()) < deadline:
                request = next_request()
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = CONTENT_LENGTH.search(head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                t1 = time.perf_counter()
                counts["all"] += 1
                if now >= measure_from:
                    latencies.append(t1 - t0)
                    counts["requests"] += 1
                    if int(head[9:12]) not in expected:
                        counts["errors"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    cpu = cpu_seconds(pid) - cpu_start
    cpu_ms_per_post = cpu * 1000 / (counts["all"] * batch) if counts["all"] else float("nan")
    return Result(
        counts["requests"], counts["requests"] * batch, counts["errors"], seconds, latencies, cpu_ms_per_post
    )


def start_server(target: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        *target,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)  # noqa: S603
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server {target} did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


async def drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per configuration")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100, help="posts per batch request")
    parser.add_argument(
        "--sizes", type=int, action="append", help="posts per request (repeatable; default: 1 and --batch)"
    )
    parser.add_argument("--only", choices=["ceiling", "sqlite", "pg"], action="append", help="run only these")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_DATABASE_URL"), help="PostgreSQL URL (optional)"
    )
    args = parser.parse_args()
    token = mint_dev_token(secret=SECRET, subject="bench", roles=["agency_system"], departments=[])
    rows: list[str] = []

    def run(name: str, proc_target: list[str], env: dict[str, str]) -> None:
        port = free_port()
        proc = start_server(proc_target, env, port)
        try:
            for batch in args.sizes or (1, args.batch):
                result = asyncio.run(
                    load(
                        port,
                        pid=proc.pid,
                        batch=batch,
                        token=token,
                        connections=args.connections,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    )
                )
                endpoint = "POST /v1/posts" if batch == 1 else f"POST /v1/posts:batch ({batch}/request)"
                rows.append(result.row(name, endpoint))
                print(rows[-1], flush=True)
        finally:
            stop_server(proc)

    print("| server | endpoint | requests/s | posts/s | p50 ms | p99 ms | server CPU ms/post | errors |")
    print("|---|---|---|---|---|---|---|---|")
    only = set(args.only or ["ceiling", "sqlite", "pg"])
    if "ceiling" in only:
        run("ceiling: validate only", ["bench.ingest_ceiling:app"], {})
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "AUTH_DEV_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        sqlite_env = {**env, "INGEST_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/ingest.db"}
        if "sqlite" in only:
            run("ingest, SQLite", ["services.ingest.main:create_app", "--factory"], sqlite_env)
        if args.pg and "pg" in only:
            schema = f"bench_ingest_{RUN_ID}"
            pg_env = {**env, "INGEST_DATABASE_URL": args.pg, "INGEST_DATABASE_SCHEMA": schema}
            try:
                run("ingest, PostgreSQL", ["services.ingest.main:create_app", "--factory"], pg_env)
            finally:
                asyncio.run(drop_schema(args.pg, schema))


if __name__ == "__main__":
    main()
