"""Run the whole platform on one machine: the embedded broker and the four services as separate processes.

``make run`` uses it (Ctrl-C stops everything cleanly); the end-to-end tests use ``Platform`` the same way.
With ``KAFKA_BOOTSTRAP_SERVERS`` set, that cluster is used instead of the embedded broker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from shared.broker import EmbeddedBroker

SERVICES: dict[str, int] = {"ingest": 8001, "policy": 8002, "routing": 8003, "metrics": 8004}


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, echo: bool) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", f"services.{self.name}"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        sink: IO[bytes] | None = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        self._pump = threading.Thread(target=self._pump_output, args=(sink, echo), daemon=True)
        self._pump.start()

    def _pump_output(self, sink: IO[bytes] | None, echo: bool) -> None:
        if self.process is None or self.process.stdout is None:
            return
        prefix = f"{self.name:<8}| ".encode()
        for line in self.process.stdout:
            if sink is not None:
                sink.write(line)
                sink.flush()
            if echo:
                sys.stdout.buffer.write(prefix + line)
                sys.stdout.buffer.flush()
        if sink is not None:
            sink.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.process.returncode}")
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {last}")

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        proc = self.process
        if proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            proc.wait(5)
        if self._pump is not None:
            self._pump.join(2)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to commit or clean up."""
        proc = self.process
        if proc is None:
            return
        self.signal(signal.SIGKILL)
        proc.wait(10)
        if self._pump is not None:
            self._pump.join(2)


class Platform:
    """The broker (unless external) and the four services, each its own process."""

    def __init__(
        self,
        *,
        var_dir: Path,
        database_urls: Mapping[str, str] | None = None,
        database_schemas: Mapping[str, str] | None = None,
        ports: Mapping[str, int] | None = None,
        extra_env: Mapping[str, str] | None = None,
        echo: bool = False,
    ) -> None:
        self.var_dir = var_dir
        self.echo = echo
        self.broker: EmbeddedBroker | None = None
        self.bootstrap_servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.dev_secret = (
            (extra_env or {}).get("AUTH_DEV_SECRET")
            or os.environ.get("AUTH_DEV_SECRET")
            or self._dev_secret()
        )
        ports = ports or SERVICES
        base_env = {**os.environ, **(extra_env or {}), "AUTH_DEV_SECRET": self.dev_secret}
        base_env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
        self.services: dict[str, ServiceProcess] = {}
        for name in SERVICES:
            prefix = name.upper()
            env = dict(base_env)
            env[f"{prefix}_PORT"] = str(ports[name])
            url = (database_urls or {}).get(name) or f"sqlite+aiosqlite:///{var_dir / name}.db"
            env[f"{prefix}_DATABASE_URL"] = url
            schema = (database_schemas or {}).get(name)
            if schema:
                env[f"{prefix}_DATABASE_SCHEMA"] = schema
            self.services[name] = ServiceProcess(name, ports[name], env, log_file=var_dir / f"{name}.log")

    def _dev_secret(self) -> str:
        path = self.var_dir / "dev-secret"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def start(self, names: Collection[str] | None = None) -> Platform:
        """Start the broker (unless external or already started) and the services (``names``: only those;
        a later call starts the others; a service already running is left alone)."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        if not self.bootstrap_servers:
            self.broker = EmbeddedBroker(log_path=str(self.var_dir / "broker.log")).start()
            self.bootstrap_servers = self.broker.bootstrap_servers
        chosen = [
            svc
            for name, svc in self.services.items()
            if (names is None or name in names) and (svc.process is None or svc.process.poll() is not None)
        ]
        for svc in chosen:
            svc.env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
            svc.start(echo=self.echo)
        for svc in chosen:
            svc.wait_ready()
        return self

    def restart(self, name: str, *, env: Mapping[str, str] | None = None, wait: bool = True) -> None:
        """Start ``name`` again (after ``kill`` or ``stop``), optionally with changed environment."""
        svc = self.services[name]
        svc.env.update(env or {})
        svc.start(echo=self.echo)
        if wait:
            svc.wait_ready()

    def stop(self) -> None:
        for svc in self.services.values():
            svc.signal(signal.SIGTERM)
        for svc in self.services.values():
            svc.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    var_dir = Path(os.environ.get("SWITCHBOARD_VAR", "var")).resolve()
    platform = Platform(var_dir=var_dir, echo=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        platform.start()
    except Exception:
        platform.stop()
        raise
    urls = "\n".join(
        f"  {name:<8} {svc.url}   (OpenAPI: {svc.url}/docs)" for name, svc in platform.services.items()
    )
    print(
        f"""
Switchboard is running. Broker: {platform.bootstrap_servers}. Data and logs: {var_dir}
{urls}

Post a post (in another terminal):
  TOKEN=$(make -s token ROLE=agency_system)
  curl -s -X POST {platform.services["ingest"].url}/v1/posts -H "Authorization: Bearer $TOKEN" \\
    -H 'Content-Type: application/json' -d '{{"platform": "x", "external_id": "1", "account": "@agency",
    "text": "When does the bridge reopen?", "author": {{"id": "42", "handle": "someone"}},
    "created_at": "2026-11-26T09:00:00Z"}}'
Then its timeline (use the id it answered):
  curl -s {platform.services["metrics"].url}/v1/posts/ID/timeline \\
    -H "Authorization: Bearer $(make -s token ROLE=ops)"

Ctrl-C stops everything.
""",
        flush=True,
    )
    try:
        while not stop.is_set():
            for svc in platform.services.values():
                if svc.process is not None and svc.process.poll() is not None:
                    print(f"{svc.name} exited with code {svc.process.returncode}; stopping.", flush=True)
                    stop.set()
            stop.wait(0.5)
    finally:
        print("Stopping...", flush=True)
        platform.stop()


if __name__ == "__main__":
    main()
