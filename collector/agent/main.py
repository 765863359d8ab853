"""The agent's wiring: spool, forwarder and intake app, and an orderly shutdown.

SIGTERM (or Ctrl-C) stops the intake first (uvicorn finishes the requests in
hand), then the forwarder (the upstream request in flight completes or times out;
its entries are deleted only if it was acknowledged), then closes the spool. A
clean close checkpoints SQLite's WAL, so only `spool.sqlite3` and `agent.lock`
remain in the spool dir; after a kill -9 the WAL is replayed on the next open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry

from collector.agent.forwarder import Forwarder
from collector.agent.intake import Intake, create_app
from collector.agent.metrics import AgentMetrics
from collector.agent.pending import Pending
from collector.agent.profiler import Profiler
from collector.agent.settings import AgentSettings
from collector.agent.specs import Specs
from collector.agent.spool import DirLock, Spool, prepare_dir
from steward.lifecycle import on_signals
from steward.tls import http_client

log = logging.getLogger(__name__)


class Agent:
    """All parts of one agent on one spool dir. Clock, monotonic time and the metrics
    registry come in here, so tests and embedders choose them."""

    def __init__(self, settings: AgentSettings, registry: CollectorRegistry, *,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._closed: int | None = None
        path = prepare_dir(settings.spool_dir)
        self._lock = DirLock(settings.spool_dir)
        try:
            self.spool = self._open(path, clock)
            self.metrics = AgentMetrics(registry)
            self.metrics.watch(self.spool.totals, clock)
            self.forwarder = Forwarder(settings, self._open(path, clock), self.metrics,
                                       monotonic=monotonic)
            self.profiler = self._profiler(path, clock) if settings.profiles.enabled else None
        except BaseException:
            self._lock.release()
            raise
        intake = Intake(self.spool, self.metrics, settings.max_body_bytes, self.forwarder.wake,
                        settings.sample_rate, self.profiler)
        if self.profiler is not None:
            self.profiler.store = intake.store
        self.app = create_app(intake, registry, self.checks)

    def _profiler(self, path: Path, clock: Callable[[], float]) -> Profiler:
        p = self.settings.profiles
        pending = Pending(path, p.max_pending_bytes, self.settings.retry_after_s)
        assert p.api_url is not None  # the settings check it
        client = http_client(timeout=10.0, token=self.settings.token,
                             ca_bundle=self.settings.ca_bundle)
        specs = Specs(p.api_url, pending, ttl_s=p.spec_ttl_s, retry_s=p.spec_retry_s,
                      client=client, clock=clock)
        return Profiler(p, pending, specs, self.metrics, clock=clock)

    def _open(self, path: Path, clock: Callable[[], float]) -> Spool:
        s = self.settings
        return Spool(path, s.max_spool_bytes, s.full_policy, max_dead_bytes=s.max_dead_bytes,
                     retry_after_s=s.retry_after_s, clock=clock)

    def checks(self) -> dict[str, bool]:
        """Readiness: the spool answers and the forwarder runs. The link is not part of
        it: being offline is normal at the edge, and the intake works regardless."""
        return {"spool": self.spool.ping(), "forwarder": self.forwarder.alive}

    def start(self) -> Agent:
        self.forwarder.start()
        if self.profiler is not None:
            self.profiler.specs.start()
            self.profiler.start()
        return self

    def close(self) -> int:
        """Stop forwarding (the request in flight finishes), then close the spool.
        Returns the entries left waiting. Calling it again does nothing."""
        if self._closed is not None:
            return self._closed
        if self.profiler is not None:  # open windows stay pending on disk
            self.profiler.stop()
            self.profiler.specs.stop()
            self.profiler.pending.close()
        self.forwarder.stop()
        self._closed = self.spool.totals().entries
        self.forwarder.spool.close()
        self.spool.close()
        self._lock.release()
        return self._closed


def main(settings: AgentSettings) -> None:
    """Run until SIGTERM/SIGINT: serve the intake in this thread, forward in another."""
    agent = Agent(settings, CollectorRegistry()).start()
    server = uvicorn.Server(uvicorn.Config(agent.app, host=settings.host, port=settings.port,
                                           log_level="warning", lifespan="off"))
    # uvicorn installs its own handlers while serving and re-raises the signal after;
    # these handlers receive it then, so the process exits 0 after closing the spool.
    on_signals(lambda: setattr(server, "should_exit", True))
    totals = agent.spool.totals()
    log.info("agent listening on http://%s:%d; forwarding to %s (%s); spool %s holds %d "
             "entries (%d records, %d bytes), policy %s", settings.host, settings.port,
             settings.collector_url, "token set" if settings.token else "no token",
             settings.spool_dir, totals.entries, totals.records, totals.bytes,
             settings.full_policy)
    try:
        server.run()
    finally:
        left = agent.close()
        log.info("agent stopped; %d entries wait in the spool", left)
