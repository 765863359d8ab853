"""Profile mode of the agent: pending rows, windows closing, specs cached on disk.

Real SQLite spool files; the API is an in-process httpx transport; time is a fake clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from collector.agent.batch import encode_records
from collector.agent.metrics import AgentMetrics
from collector.agent.pending import Pending, PendingFull
from collector.agent.profiler import Profiler
from collector.agent.settings import ProfileSettings
from collector.agent.specs import Specs
from collector.agent.spool import Spool
from collector.otlp import JSON
from steward.profiles import spec_from_reference
from steward.schema import FeatureProfile, InferenceRecord
from tests.collector.agent.conftest import T0, record

START = int(T0.timestamp())
SPEC = spec_from_reference("fraud-detector", "1.5.0",
                           {"amount": "numerical", "country": "categorical",
                            "prediction": "numerical"}, "prediction",
                           [{"amount": float(i), "country": "DE", "prediction": 0.1}
                            for i in range(100)])


def rec(i: int, **kw: Any) -> dict[str, Any]:
    """A validated record as the intake hands it on: `i` ms into the first window."""
    fields = {"features": {"amount": float(i % 50), "country": "DE" if i % 3 else "FR"},
              "prediction": 0.25, "node": "edge-box-7", **kw}
    return InferenceRecord.model_validate(record(f"r-{i}", i, **fields)).model_dump(
        mode="json", by_alias=True)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Rig:
    def __init__(self, tmp_path: Path, api: Callable[[httpx.Request], httpx.Response],
                 **settings: Any) -> None:
        self.path = tmp_path / "spool.sqlite3"
        self.clock = Clock(START + 10.0)
        self.settings = ProfileSettings(enabled=True, api_url="http://api", **settings)
        self.spool = Spool(self.path, 10 ** 8)
        self.registry = CollectorRegistry()
        self.metrics = AgentMetrics(self.registry)
        self.api = api
        self.open()

    def open(self) -> None:
        self.pending = Pending(self.path, self.settings.max_pending_bytes)
        self.specs = Specs("http://api", self.pending, clock=self.clock,
                           client=httpx.Client(transport=httpx.MockTransport(self.api)))
        self.profiler = Profiler(self.settings, self.pending, self.specs, self.metrics,
                                 self.spool.append, clock=self.clock)

    def close(self) -> None:
        self.specs.client.close()
        self.pending.close()

    def take(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raw, groups = self.profiler.split(records)
        self.profiler.commit(groups)
        return raw

    def entries(self, signal: str) -> list[Any]:
        head = self.spool.head([signal])
        return self.spool.read(signal, head[0], 1000, 10 ** 9, 10 ** 9) if head else []

    def profiles(self) -> list[FeatureProfile]:
        return [FeatureProfile.model_validate(p) for e in self.entries("profiles")
                for p in json.loads(e.body)["records"]]


def spec_api(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/references/fraud-detector/1.5.0/profile-spec":
        return httpx.Response(200, content=SPEC.model_dump_json())
    return httpx.Response(404, json={"detail": "no reference"})


def offline(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("the link is down", request=request)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(api: Callable[[httpx.Request], httpx.Response] = spec_api, **kw: Any) -> Rig:
        made.append(Rig(tmp_path, api, **kw))
        return made[-1]
    yield make
    for r in made:
        r.close()
        r.spool.close()


def test_a_window_of_records_becomes_one_profile_with_their_counts(rig):
    r = rig()
    assert r.take([rec(0)]) == [rec(0)]  # no spec yet: raw, and a fetch is asked for
    assert r.specs.fetch("fraud-detector", "1.5.0") == SPEC
    batch = [rec(i) for i in range(1, 121)]
    assert r.take(batch) == []
    assert r.pending.totals()[0] == 120
    assert r.profiler.tick() == 0  # the window is open: nothing yet
    r.clock.t = START + 300 + 30  # end + grace on the wall clock
    assert r.profiler.tick() == 1
    (p,) = r.profiles()
    assert (p.model, p.version, p.site, p.node, p.tier, p.rows, p.spec_id) == \
        ("fraud-detector", "1.5.0", "store-042", "edge-box-7", "edge", 120, SPEC.spec_id)
    assert (p.window.start.timestamp(), p.window.end.timestamp()) == (START, START + 300)
    amount, country = p.columns["amount"], p.columns["country"]
    assert amount.count == 120 and amount.sum == sum(float(i % 50) for i in range(1, 121))
    assert dict(country.values) == {"DE": 80, "FR": 40}
    assert p.columns["prediction"].count == 120 and p.latency_ms.count == 120
    assert (len(p.reservoir), p.reservoir_of) == (120, 120)
    assert r.pending.totals() == (0, 0)
    value = r.registry.get_sample_value
    assert (value("steward_agent_profiles_built_total"), value("steward_agent_profiled_rows_total"),
            value("steward_agent_replaced_records_total")) == (1, 120, 120)


def test_event_time_closes_a_window_and_late_records_make_a_second_profile(rig):
    r = rig(window_s=60, grace_s=5)
    r.specs.fetch("fraud-detector", "1.5.0")
    r.take([rec(i) for i in range(10)])
    r.take([rec(65_000 + i) for i in range(3)])  # 65 s in: the next window, watermark 65 s
    assert r.profiler.tick() == 1  # 65 >= 60 + 5: the first window closes by event time
    r.take([rec(100)])  # late, for the closed window
    r.clock.t = START + 200
    assert r.profiler.tick() == 2
    rows = sorted((p.window.start.timestamp() - START, p.rows) for p in r.profiles())
    assert rows == [(0, 1), (0, 10), (60, 3)]


def test_pending_rows_and_specs_survive_a_restart_offline(rig):
    r = rig()
    r.specs.fetch("fraud-detector", "1.5.0")
    r.take([rec(i) for i in range(5)])
    r.close()
    r.api = offline
    r.open()  # a restart with the link down: the spec comes from disk
    assert r.specs.get("fraud-detector", "1.5.0") == SPEC
    assert r.take([rec(i) for i in range(5, 8)]) == []
    r.clock.t = START + 400
    assert r.profiler.tick() == 1
    assert [p.rows for p in r.profiles()] == [8]


def test_a_rebuilt_window_has_the_same_profile_id(rig):
    r = rig()
    r.specs.fetch("fraud-detector", "1.5.0")
    r.take([rec(i) for i in range(300)])
    r.clock.t = START + 400
    window = r.pending.windows()[0]
    first = r.profiler._build(SPEC, window)
    assert r.profiler._build(SPEC, window) == first  # e.g. after a crash before the delete


def test_columns_raw_forwards_the_records_too(rig):
    r = rig(columns_raw=True)
    r.specs.fetch("fraud-detector", "1.5.0")
    batch = [rec(i) for i in range(4)]
    # forwarded whole, marked as profiled: drift judges use the profile, not these
    assert r.take(batch) == [{**b, "profiled": True} for b in batch]
    assert r.pending.totals()[0] == 4
    assert r.registry.get_sample_value("steward_agent_replaced_records_total") == 0


def test_without_a_usable_spec_at_close_the_records_go_raw(rig):
    r = rig()
    r.specs.fetch("fraud-detector", "1.5.0")
    r.take([rec(i) for i in range(6)])
    r.specs._specs.clear()  # e.g. an unreadable cache
    r.specs.client = httpx.Client(transport=httpx.MockTransport(offline))
    r.clock.t = START + 400
    assert r.profiler.tick() == 0
    (entry,) = r.entries("inferences")
    assert entry.records == 6 and r.profiles() == []
    assert r.pending.totals() == (0, 0)


def test_pending_rows_are_bounded(tmp_path: Path):
    pending = Pending(tmp_path / "spool.sqlite3", max_bytes=2000)
    profiler_groups = Profiler(ProfileSettings(), pending, _AlwaysSpec(),  # type: ignore[arg-type]
                               AgentMetrics(CollectorRegistry()))
    _, groups = profiler_groups.split([rec(i) for i in range(20)])
    with pytest.raises(PendingFull, match="retry later"):
        profiler_groups.commit(groups)
    assert pending.totals() == (0, 0)
    pending.close()


class _AlwaysSpec:
    def get(self, model: str, version: str) -> Any:
        return SPEC


def test_spool_body_of_a_profile_is_a_records_batch(rig):
    r = rig()
    r.specs.fetch("fraud-detector", "1.5.0")
    r.take([rec(1)])
    r.clock.t = START + 400
    r.profiler.tick()
    (entry,) = r.entries("profiles")
    assert (entry.content_type, entry.records) == (JSON, 1)
    doc = json.loads(entry.body)
    assert entry.body == encode_records(doc["records"])
