"""Agent unit-test fixtures: real SQLite files, real HTTP servers on loopback, no broker.

`upstream` starts `tests.support.Upstream`s, stand-ins for the collector that record
every request and answer with whatever the test's function says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.agent.forwarder import Forwarder
from collector.agent.metrics import AgentMetrics
from collector.agent.settings import AgentSettings
from collector.agent.spool import Spool
from steward.broker import free_port
from tests.support import Answer, Upstream, ok

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(rid: str | None, i: int = 0, **fields: Any) -> dict[str, Any]:
    """A valid inference record (`rid` None: the agent derives the id)."""
    out = {"model": "fraud-detector", "version": "1.5.0", "site": "store-042", "tier": "edge",
           "ts": (T0 + timedelta(milliseconds=i)).isoformat(), "latency_ms": 10.0 + i % 7,
           **fields}
    return out if rid is None else {"id": rid, **out}


@pytest.fixture
def upstream() -> Iterator[Callable[..., Upstream]]:
    started: list[Upstream] = []

    def start(answer: Answer = ok, port: int = 0) -> Upstream:
        started.append(Upstream(answer, port))
        return started[-1]
    yield start
    for u in started:
        u.stop()


def settings(tmp_path: Path, url: str = "http://127.0.0.1:9", **kw: Any) -> AgentSettings:
    """Fast settings for tests: small backoff, the spool under tmp_path."""
    base = {"collector_url": url, "spool_dir": tmp_path / "spool", "port": free_port(),
            "backoff_base_s": 0.01, "backoff_cap_s": 0.05}
    return AgentSettings(**{**base, **kw})


@dataclass
class Parts:
    """A forwarder on its own spool, driven step by step."""

    spool: Spool
    forwarder: Forwarder
    registry: CollectorRegistry

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def drain(self, max_steps: int = 200) -> None:
        """Step until the spool has nothing sendable now."""
        for _ in range(max_steps):
            delay = self.forwarder.step()
            if delay is None:
                return
            time.sleep(min(delay, 0.5))
        pytest.fail("the forwarder did not drain the spool")


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Callable[..., Parts]]:
    made: list[Parts] = []

    def make(url: str, monotonic: Callable[[], float] = time.monotonic, **kw: Any) -> Parts:
        s = settings(tmp_path, url, **kw)
        s.spool_dir.mkdir(exist_ok=True)
        spool = Spool(s.spool_dir / "spool.sqlite3", s.max_spool_bytes, s.full_policy)
        registry = CollectorRegistry()
        metrics = AgentMetrics(registry)
        metrics.watch(spool.totals, time.time)
        made.append(Parts(spool, Forwarder(s, spool, metrics, monotonic=monotonic), registry))
        return made[-1]
    yield make
    for p in made:
        p.forwarder.client.close()
        p.spool.close()
