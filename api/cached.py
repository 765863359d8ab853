"""Scrape-time gauges that query the store, computed at most once per `ttl_s`.

The fleet split and GPU cost gauges aggregate a trailing period (an hour by default) of
stored telemetry at every collection: a cost that grows with the ingest rate and is paid
again by every scraper (Prometheus, the chart sampler, `steward bench load`'s poller).
Families older than `ttl_s` are recomputed; within it, scrapes get the last ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any


class Cached:
    """A custom collector serving `inner`'s families for `ttl_s` (0: always fresh)."""

    def __init__(self, inner: Any, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._families: list[Any] | None = None
        self._at = 0.0

    def collect(self) -> Iterator[Any]:
        with self._lock:  # one recomputation at a time; the others wait for its answer
            now = self.clock()
            if self._families is None or now - self._at >= self.ttl_s:
                self._families = list(self.inner.collect())
                self._at = now
            return iter(self._families)
