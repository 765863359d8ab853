"""Store-backed gauges are recomputed at most once per TTL, then fresh again."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from api.cached import Cached


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def collect(self):
        self.calls += 1
        g = GaugeMetricFamily("steward_test_calls", "Collections so far.")
        g.add_metric([], self.calls)
        yield g


def test_scrapes_within_the_ttl_get_the_last_families() -> None:
    now = [100.0]
    inner = Counting()
    registry = CollectorRegistry()
    registry.register(Cached(inner, ttl_s=10, clock=lambda: now[0]))
    assert b"steward_test_calls 1.0" in generate_latest(registry)
    now[0] = 109.9
    assert b"steward_test_calls 1.0" in generate_latest(registry)
    now[0] = 110.0
    assert b"steward_test_calls 2.0" in generate_latest(registry)
    assert inner.calls == 2


def test_ttl_zero_is_always_fresh() -> None:
    inner = Counting()
    cached = Cached(inner, ttl_s=0, clock=lambda: 5.0)
    assert [next(iter(cached.collect())).samples[0].value for _ in range(3)] == [1, 2, 3]
