"""The chart sampler behind GET /ui: the dashboards' signals read from a real registry,
rates of counters between samples, the bounded buffer; and the routes' scopes, over HTTP."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from api.app import create_app
from api.charts import MAX_SERIES, Charted, ChartSampler
from api.store import Store
from steward.auth import Authenticator, new_token
from tests.support import Served, wait_for

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def gauge(registry: CollectorRegistry, name: str, labels: list[str],
          values: dict[tuple[str, ...], float]) -> Gauge:
    g = Gauge(name, name, labels, registry=registry)
    for key, value in values.items():
        g.labels(*key).set(value)
    return g


def fleet(registry: CollectorRegistry) -> Counter:
    """Every family the charts read, with values worked out by hand below."""
    records = Counter("steward_stream_records_total", "r", ["stage", "topic", "outcome"],
                      registry=registry)
    now = T0.timestamp()
    gauge(registry, "steward_site_last_seen_timestamp_seconds", ["site"],
          {("shop-lyon",): now - 10, ("factory-berlin",): now - 290, ("oslo",): now - 301})
    gauge(registry, "steward_drift_share_ratio", ["model", "version", "site"],
          {("fraud", "1.4.0", "factory-berlin"): 0.5, ("fraud", "1.4.0", "shop-lyon"): 0.0})
    labels = ["partition", "site", "card", "profile", "team", "model"]
    gauge(registry, "steward_gpu_partition_compute_card_use_ratio", labels,
          {("g0/a", "s", "H100", "1g.10gb", "", ""): 0.05,
           ("g0/b", "s", "H100", "1g.10gb", "", ""): 0.10,
           ("g0/c", "s", "H100", "3g.40gb", "", ""): 0.30})
    gauge(registry, "steward_gpu_partition_promised_compute_ratio", labels,
          {("g0/a", "s", "H100", "1g.10gb", "", ""): 1 / 7,
           ("g0/b", "s", "H100", "1g.10gb", "", ""): 1 / 7,
           ("g0/c", "s", "H100", "3g.40gb", "", ""): 3 / 7})
    gauge(registry, "steward_gpu_cost_usd", ["team", "model", "site", "tier", "kind"],
          {("risk", "fraud", "s", "edge", "allocated"): 3.0,
           ("ads", "ctr", "s", "edge", "allocated"): 1.5,
           ("risk", "fraud", "s", "edge", "idle"): 2.0})
    gauge(registry, "steward_events", ["type", "model"],
          {("steward.model.rolled_back", "fraud"): 2, ("steward.model.rolled_back", "ctr"): 1,
           ("steward.model.promoted", "fraud"): 1, ("steward.rollout.step_advanced", "fraud"): 4,
           ("steward.retrain.requested", "fraud"): 7})
    gauge(registry, "steward_rollout_score", ["rollout_id", "model"],
          {("r1", "fraud"): 80.0, ("r1", "fraud-shadow"): 60.0, ("r2", "ctr"): 40.0})
    gauge(registry, "steward_governance_decisions", ["proposal_type", "model", "allowed"],
          {("steward.model.rolled_back", "fraud", "true"): 3,
           ("steward.retrain.requested", "fraud", "true"): 2,
           ("steward.retrain.requested", "fraud", "false"): 1})
    gauge(registry, "steward_governance_denials", ["proposal_type", "model", "rule"],
          {("steward.retrain.requested", "fraud", "budget"): 1,
           ("steward.model.promoted", "fraud", "budget"): 2,
           ("steward.model.promoted", "fraud", "residency"): 1})
    return records


def by_id(sampler: ChartSampler) -> dict[str, dict[str, list[float | None]]]:
    return {c.id: {s.name: s.values for s in c.series} for c in sampler.snapshot().charts}


def test_each_chart_reads_its_dashboard_signal_aggregated_the_same_way():
    registry, clock = CollectorRegistry(), Clock()
    records = fleet(registry)
    sampler = ChartSampler(registry, clock, interval_s=5)
    records.labels("telemetry-sink", "inference", "ok").inc(10)
    sampler.sample()
    clock.advance(5)
    records.labels("telemetry-sink", "inference", "ok").inc(20)  # 30 - 10 over 5 s
    records.labels("telemetry-sink", "inference", "rejected").inc(5)  # new: from 0
    records.labels("sink", "actions", "ok").inc(3)
    records.labels("decision-sink", "t1.steward.governance.decisions.v1", "ok").inc(2)
    sampler.sample()
    charts = by_id(sampler)
    assert charts["ingest"] == {"inference": [None, 5.0], "actions": [None, 0.6],
                                "governance.decisions": [None, 0.4]}
    assert charts["sites"] == {"online": [2.0, 2.0]}  # 10 s and 290 s (295 s) ago; not 301 s
    assert charts["drift"] == {"fraud 1.4.0 factory-berlin": [0.5, 0.5],
                               "fraud 1.4.0 shop-lyon": [0.0, 0.0]}
    gpu = {k: [round(x, 6) for x in v] for k, v in charts["gpu"].items()}
    assert gpu == {"1g.10gb use": [0.15, 0.15], "1g.10gb promise": [0.285714, 0.285714],
                   "3g.40gb use": [0.3, 0.3], "3g.40gb promise": [0.428571, 0.428571]}
    assert charts["cost"] == {"allocated": [4.5, 4.5], "idle": [2.0, 2.0]}
    assert charts["rollouts"] == {"steward.model.rolled_back": [3.0, 3.0],
                                  "steward.model.promoted": [1.0, 1.0],
                                  "steward.rollout.step_advanced": [4.0, 4.0]}
    assert charts["rollout-score"] == {"r1": [80.0, 80.0], "r2": [40.0, 40.0]}  # max by
    assert charts["governance"] == {"allowed": [5.0, 5.0], "denied": [1.0, 1.0]}
    assert charts["denials"] == {"budget": [3.0, 3.0], "residency": [1.0, 1.0]}
    out = sampler.snapshot()
    assert out.times == [T0.timestamp(), T0.timestamp() + 5]
    assert [c.kind for c in out.charts if c.id == "denials"] == ["bar"]


def test_sites_online_follows_the_clock():
    registry, clock = CollectorRegistry(), Clock()
    fleet(registry)
    sampler = ChartSampler(registry, clock)
    sampler.sample()
    clock.advance(11)  # factory-berlin is now 301 s quiet
    sampler.sample()
    assert by_id(sampler)["sites"] == {"online": [2.0, 1.0]}


def test_a_counter_that_restarted_counts_from_zero():
    registry, clock = CollectorRegistry(), Clock()
    sampler = ChartSampler(registry, clock)
    seen = {"n": 100.0}
    registry.register(_Fixed(lambda: seen["n"]))
    sampler.sample()
    clock.advance(2)
    seen["n"] = 8.0  # the consumer restarted: 8 since then
    sampler.sample()
    clock.advance(2)
    seen["n"] = 12.0
    sampler.sample()
    assert by_id(sampler)["ingest"] == {"inference": [None, 4.0, 2.0]}


class _Fixed:
    """A collector yielding one sink counter whose value the test sets."""

    def __init__(self, value) -> None:
        self.value = value

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        c = CounterMetricFamily("steward_stream_records", "r",
                                labels=["stage", "topic", "outcome"])
        c.add_metric(["telemetry-sink", "inference", "ok"], self.value())
        yield c


def test_the_buffer_keeps_the_last_points_and_aligns_late_series():
    registry, clock = CollectorRegistry(), Clock()
    g = Gauge("steward_drift_share_ratio", "s", ["model", "version", "site"], registry=registry)
    sampler = ChartSampler(registry, clock, points=3)
    for i in range(5):
        g.labels("m", "1", "a").set(i)
        if i == 3:
            g.labels("m", "1", "b").set(0.5)
        sampler.sample()
        clock.advance(1)
    out = sampler.snapshot()
    assert out.times == [T0.timestamp() + i for i in (2, 3, 4)]
    assert by_id(sampler)["drift"] == {"m 1 a": [2.0, 3.0, 4.0], "m 1 b": [None, 0.5, 0.5]}


def test_many_series_are_capped_and_counted():
    registry = CollectorRegistry()
    gauge(registry, "steward_drift_share_ratio", ["model", "version", "site"],
          {("m", "1", f"site-{i:02d}"): 0.1 for i in range(MAX_SERIES + 3)})
    sampler = ChartSampler(registry, Clock())
    sampler.sample()
    drift = next(c for c in sampler.snapshot().charts if c.id == "drift")
    assert len(drift.series) == MAX_SERIES and drift.hidden == 3


def test_a_failing_sample_is_a_gap_not_the_end_of_the_sampler():
    registry, calls = CollectorRegistry(), {"n": 0}

    class Flaky:
        def collect(self):
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("store went away for a moment")
            yield from ()

    registry.register(Flaky())
    sampler, stop = ChartSampler(registry, Clock(), interval_s=0.01), threading.Event()
    thread = threading.Thread(target=sampler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(sampler.snapshot().times) >= 2, 10, "samples after a failure")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert sampler.snapshot().failed_samples == 1
    assert not thread.is_alive()


def test_the_page_is_open_and_its_data_needs_the_read_scope(tmp_path):
    reader, reader_spec = new_token("browser", ["read"], None)
    agent, agent_spec = new_token("agent", ["ingest"], None)
    store = Store(tmp_path / "s.duckdb")
    server = Served(create_app(store, CollectorRegistry(), {},
                               auth=Authenticator([reader_spec, agent_spec])))
    try:
        page = httpx.get(f"{server.url}/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="ui/charts.js">' in page.text
        script = httpx.get(f"{server.url}/ui/charts.js")
        assert script.status_code == 200 and "function refresh" in script.text
        assert "http" not in script.text.replace("http://www.w3.org/2000/svg", "")  # offline
        assert httpx.get(f"{server.url}/ui/series").status_code == 401
        assert httpx.get(f"{server.url}/ui/series",
                         headers={"authorization": f"Bearer {agent}"}).status_code == 403
        body = httpx.get(f"{server.url}/ui/series",
                         headers={"authorization": f"Bearer {reader}"}).json()
        assert body["times"] == [] and body["interval_s"] == 5.0
        assert [c["id"] for c in body["charts"]] == ["ingest", "sites", "drift", "gpu", "cost",
                                                      "rollouts", "rollout-score", "governance",
                                                      "denials"]
    finally:
        server.stop()
        store.close()


class _Counted:
    """A custom collector yielding one gauge family, counting its runs."""

    def __init__(self, name: str, value: float) -> None:
        self.name, self.value, self.runs = name, value, 0

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        self.runs += 1
        g = GaugeMetricFamily(self.name, "g", labels=["rollout_id", "model"])
        g.add_metric(["r9", "m"], self.value)
        yield g


def test_the_charted_view_runs_only_the_charts_collectors_with_the_same_numbers():
    registry, clock = CollectorRegistry(), Clock()
    records = fleet(registry)
    charted, uncharted = _Counted("steward_rollout_score", 90.0), _Counted("steward_other", 1.0)
    calls: list[int] = []
    plain = Gauge("steward_store_events", "e", registry=registry)
    plain.set_function(lambda: calls.append(1) or 7.0)
    for collector in (charted, uncharted):
        registry.register(collector)
    full, view = ChartSampler(registry, clock), ChartSampler(Charted(registry, [charted]), clock)
    for step in (10, 20):
        records.labels("telemetry-sink", "inference", "ok").inc(step)
        full.sample()
        view.sample()
        clock.advance(5)
    assert by_id(view) == by_id(full)
    assert by_id(view)["rollout-score"]["r9"] == [90.0, 90.0]
    assert by_id(view)["ingest"] == {"inference": [None, 4.0]}
    assert (charted.runs, uncharted.runs, len(calls)) == (4, 2, 2)  # the view: none of theirs
    generate_latest(registry)  # /metrics still runs every collector
    assert (uncharted.runs, len(calls)) == (3, 3)


def test_the_apps_sampler_skips_the_collectors_no_chart_reads(tmp_path):
    store, registry = Store(tmp_path / "s.duckdb"), CollectorRegistry()
    try:
        app = create_app(store, registry, {}, clock=Clock(), charts_interval_s=2,
                         charts_points=4)
        uncharted = _Counted("steward_fleet_nodes", 1.0)  # as FleetViewGauges: no chart's
        registry.register(uncharted)
        sampler = app.state.charts
        sampler.sample()
        assert uncharted.runs == 0 and sampler.failed == 0
        assert (sampler.interval_s, sampler.buffer.maxlen) == (2, 4)
        generate_latest(registry)
        assert uncharted.runs == 1
    finally:
        store.close()
