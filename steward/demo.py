"""A simulated fleet for `steward demo` and `steward up --demo`.

Cloud nodes in one region serve model `fraud-detector`: baseline 1.4.0 takes
90% of traffic, canary 1.5.0 takes 10% and, after `regress_after_s`, gets three
times slower. They report latency as OTLP histograms (delta temporality),
as an OpenTelemetry SDK would. Edge nodes at two sites post inference records
(features, prediction) in JSON batches; after `drift_after_s` the sensors at one site
drift (warmer, larger amounts), so the drift judge flags its windows and the trigger
asks for retraining once. Given an edge agent (`agent_url`, as `steward up --demo`
starts one in profile mode), the drifting site posts to it instead of the collector,
and its windows reach the judge as feature profiles.

Given the API (`api_url`), the demo closes the loop: once the retraining request is
stored (it passed the gate onto the actions topic), it registers the retrained version
`RETRAINED` with its evaluation metrics and model card (`POST /models/{model}/versions`)
and serves it on half of `ROLLOUT_SITE`'s traffic; the `rollout` processor starts a
canary rollout of it from the template in `DEMO_DRIFT_ENV`, which is promoted once its
runs pass and the gate's promotion policy allows it. The regressing 1.5.0 canary is the
bad one, rolled back.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

log = logging.getLogger(__name__)

MODEL = "fraud-detector"
BASELINE, CANARY = "1.4.0", "1.5.0"
REGION = "eu-west-1"
EDGE_SITES = ("factory-berlin", "shop-lyon")
BOUNDS = [5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500, 1000]
DRIFT_SITE = "factory-berlin"
RETRAINED = "1.4.1"
ROLLOUT_SITE = "shop-lyon"
"""Where the retrained version is canaried: a site whose records reach the collector raw
(the drift site's agent sends profiles of the baseline, not the records a judge needs)."""
ROLLOUT_TEMPLATE = {
    "targets": [ROLLOUT_SITE], "tier": "edge", "steps": [{"sites": 1}], "interval_s": 10,
    "grace_s": 2, "team": "risk", "estimated_usd": 25.0,
    "metrics": [{"name": "latency_ms", "critical": True, "tolerance": 0.2, "min_samples": 20}],
    "limits": {"consecutive_successes": 2},
    "target": {"region": "eu-west-1", "tier": "edge", "accelerator": "jetson-orin-nano",
               "memory_gb": 8}}
"""How the demo's retrained versions are rolled out (`STEWARD_ROLLOUTS__TEMPLATES`)."""
REGISTRATION = {"version": RETRAINED, "model_card": True,
                "eval": {"auc": 0.95, "recall": 0.86, "latency_p95_ms": 31.0},
                "artifact": {"format": "onnx", "quantisation": "int8", "memory_gb": 2}}
"""What the demo's training pipeline reports for the retrained version: the promotion,
hardware and budget policies read it."""
DEMO_DRIFT_ENV = {"STEWARD_DRIFT__WINDOW_S": "10", "STEWARD_DRIFT__GRACE_S": "2",
                  "STEWARD_DRIFT__MIN_ROWS": "50", "STEWARD_RETRAIN__K": "2",
                  "STEWARD_RETRAIN__M": "3",
                  "STEWARD_RETRAIN__TARGETS": json.dumps({MODEL: {
                      "team": "risk", "region": "eu-central-1", "estimated_usd": 40.0}}),
                  "STEWARD_ROLLOUTS__TEMPLATES": json.dumps({MODEL: ROLLOUT_TEMPLATE})}
"""Small windows and a quick trigger, so the demo shows a retrain request within a minute;
the request names its team, training region and cost, which the governance gate's
policies (rules/) check before it is emitted."""
DEMO_AGENT_ENV = {"STEWARD_AGENT_PROFILES__ENABLED": "true",
                  "STEWARD_AGENT_PROFILES__WINDOW_S": DEMO_DRIFT_ENV["STEWARD_DRIFT__WINDOW_S"],
                  "STEWARD_AGENT_PROFILES__GRACE_S": DEMO_DRIFT_ENV["STEWARD_DRIFT__GRACE_S"],
                  "STEWARD_AGENT_PROFILES__SPEC_RETRY_S": "2",
                  "STEWARD_AGENT_BACKOFF_CAP_S": "5"}
"""The edge agent `steward up --demo` runs for `DRIFT_SITE`: profile mode, with the drift
judge's windows (the agent's must equal the judge's)."""
DEMO_CANARY = {"model": MODEL, "baseline_version": BASELINE, "canary_version": CANARY,
               "factor": 1.5, "window_s": 10, "grace_s": 2, "min_samples": 20}
"""The canary spec `steward up --demo` gives the canary-latency processor."""


@dataclass(frozen=True)
class DemoConfig:
    collector_url: str = "http://127.0.0.1:4318"
    duration_s: float = 0.0
    """0 runs until stopped."""
    rate: int = 60
    """Cloud inferences per second in the region (edge nodes add ~10/s per site)."""
    regress_after_s: float = 15.0
    drift_after_s: float = 20.0
    seed: int = 7
    agent_url: str | None = None
    """An edge agent's local endpoint: `agent_sites` post their records there."""
    agent_sites: tuple[str, ...] = (DRIFT_SITE,)
    api_url: str | None = None
    """The API: once a retraining request is stored, register `RETRAINED` and serve it."""


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def edge_features(rng: random.Random, drifting: bool = False) -> dict:
    """An edge inference's features; drifting sensors read warmer and larger amounts."""
    return {"amount": round(rng.expovariate(1 / (200 if drifting else 80)), 2),
            "temperature": round(rng.gauss(27.0 if drifting else 21.0, 2.0), 2),
            "channel": rng.choice(["pos", "web", "app"])}


def register_reference(api_url: str, rows: int = 1000, seed: int = 3) -> None:
    """The reference of the baseline version: what its edge traffic looks like undrifted."""
    rng = random.Random(seed)
    lines = ["amount,temperature,channel,prediction"]
    for _ in range(rows):
        f = edge_features(rng)
        lines.append(f"{f['amount']},{f['temperature']},{f['channel']},{rng.random():.4f}")
    httpx.put(f"{api_url}/references/{MODEL}/{BASELINE}", content="\n".join(lines).encode(),
              headers={"content-type": "text/csv"},
              params={"categorical": ["channel"], "prediction": "prediction"},
              timeout=30).raise_for_status()


def latency_request(version: str, node: str, latencies_ms: list[float], start_ns: int,
                    end_ns: int) -> ExportMetricsServiceRequest:
    """One OTLP export: a delta histogram of `latencies_ms` for one cloud node."""
    counts = [0] * (len(BOUNDS) + 1)
    for ms in latencies_ms:
        counts[next((i for i, b in enumerate(BOUNDS) if ms <= b), len(BOUNDS))] += 1
    point = HistogramDataPoint(start_time_unix_nano=start_ns, time_unix_nano=end_ns,
                               count=len(latencies_ms), sum=sum(latencies_ms),
                               bucket_counts=counts, explicit_bounds=[float(b) for b in BOUNDS])
    metric = Metric(name="steward.inference.latency", unit="ms",
                    histogram=Histogram(data_points=[point],
                                        aggregation_temporality=AggregationTemporality.
                                        AGGREGATION_TEMPORALITY_DELTA))
    resource = Resource(attributes=[
        _kv("service.name", MODEL), _kv("service.version", version), _kv("cloud.region", REGION),
        _kv("steward.tier", "cloud"), _kv("host.name", node)])
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
        resource=resource, scope_metrics=[ScopeMetrics(metrics=[metric])])])


class Fleet:
    """Generates one second of traffic at a time and posts it to the collector."""

    def __init__(self, cfg: DemoConfig, client: httpx.Client,
                 agent: httpx.Client | None = None) -> None:
        self.cfg = cfg
        self.client = client
        self.agent = agent
        self.rng = random.Random(cfg.seed)
        self.started = time.monotonic()
        self.sent = {"inference_records": 0, "otlp_points": 0, "requests": 0}
        self.retrained = False

    def canary_latency(self) -> float:
        slow = time.monotonic() - self.started >= self.cfg.regress_after_s
        return self.rng.lognormvariate(3.0, 0.25) * (3.0 if slow else 1.0)

    def second(self) -> None:
        now_ns = time.time_ns()
        for node in ("cloud-a", "cloud-b"):
            n = self.cfg.rate // 2
            canary_n = max(1, n // 10)
            base = [self.rng.lognormvariate(3.0, 0.25) for _ in range(n - canary_n)]
            can = [self.canary_latency() for _ in range(canary_n)]
            for version, lat in ((BASELINE, base), (CANARY, can)):
                req = latency_request(version, node, lat, now_ns - 1_000_000_000, now_ns)
                self._post("/v1/metrics", req.SerializeToString(), "application/x-protobuf")
                self.sent["otlp_points"] += 1
        for site in EDGE_SITES:
            records = [self._edge_record(site, i) for i in range(10)]
            via = self.agent if self.agent is not None and site in self.cfg.agent_sites \
                else self.client
            self._post_json("/v1/inferences", {"records": records}, via)
            self.sent["inference_records"] += len(records)

    def register_retrained(self, api: httpx.Client) -> None:
        """Once the retraining request is stored, register the retrained version for it
        (the training pipeline's part) and start serving it at `ROLLOUT_SITE`."""
        if self.retrained:
            return
        found = api.get("/events", params={"type": "steward.retrain.requested",
                                           "limit": 1}).json()["events"]
        if not found:
            return
        trigger = found[0]["data"]["trigger_id"]
        api.post(f"/models/{MODEL}/versions",
                 json={**REGISTRATION, "retrain_trigger_id": trigger}).raise_for_status()
        self.retrained = True
        log.info("demo: registered %s %s for retraining request %s; serving it on half of "
                 "%s's traffic", MODEL, RETRAINED, trigger, ROLLOUT_SITE)

    def _edge_record(self, site: str, i: int) -> dict:
        drifting = site == DRIFT_SITE and \
            time.monotonic() - self.started >= self.cfg.drift_after_s
        version = RETRAINED if self.retrained and site == ROLLOUT_SITE and i % 2 else BASELINE
        return {"model": MODEL, "version": version, "site": site, "tier": "edge",
                "node": f"{site}-n{i % 3}", "ts": datetime.now(UTC).isoformat(),
                "latency_ms": round(self.rng.lognormvariate(2.0, 0.3), 3),
                "features": edge_features(self.rng, drifting),
                "prediction": round(self.rng.random(), 4)}

    def _post(self, path: str, body: bytes, content_type: str) -> None:
        resp = self.client.post(path, content=body, headers={"content-type": content_type})
        self.sent["requests"] += 1
        if resp.status_code != 200:
            log.warning("collector answered %d to %s: %s", resp.status_code, path, resp.text[:200])

    def _post_json(self, path: str, doc: dict, via: httpx.Client | None = None) -> None:
        resp = (via or self.client).post(path, json=doc)
        self.sent["requests"] += 1
        if resp.status_code != 200:
            who = "edge agent" if via is not None and via is self.agent else "collector"
            log.warning("%s answered %d to %s: %s", who, resp.status_code, path, resp.text[:200])


def run(cfg: DemoConfig, stop: object | None = None) -> dict[str, int]:
    """Send traffic once a second until `duration_s` passes or `stop` (an Event) is set."""
    with httpx.Client(base_url=cfg.collector_url, timeout=10.0) as client, \
            httpx.Client(base_url=cfg.agent_url or cfg.collector_url, timeout=10.0) as agent, \
            httpx.Client(base_url=cfg.api_url or cfg.collector_url, timeout=10.0) as api:
        fleet = Fleet(cfg, client, agent if cfg.agent_url else None)
        log.info("demo fleet sending to %s: %d cloud inferences/s, edge sites %s; canary %s "
                 "regresses after %.0fs", cfg.collector_url, cfg.rate, ", ".join(EDGE_SITES),
                 CANARY, cfg.regress_after_s)
        if cfg.agent_url:
            log.info("demo: %s sends through the edge agent at %s", ", ".join(cfg.agent_sites),
                     cfg.agent_url)
        tick = time.monotonic()
        while not (cfg.duration_s and time.monotonic() - fleet.started >= cfg.duration_s):
            if stop is not None and stop.is_set():  # type: ignore[attr-defined]
                break
            try:
                fleet.second()
                if cfg.api_url:
                    fleet.register_retrained(api)
            except httpx.HTTPError as exc:
                log.warning("collector, edge agent or API unreachable (%s); retrying", exc)
            tick += 1.0
            elapsed = time.monotonic() - fleet.started
            if int(elapsed) % 10 == 0:
                state = "regressing" if elapsed >= cfg.regress_after_s else "healthy"
                log.info("demo: %ds, sent %d inference records and %d OTLP exports; "
                         "canary %s is %s", elapsed, fleet.sent["inference_records"],
                         fleet.sent["otlp_points"], CANARY, state)
            time.sleep(max(0.0, tick - time.monotonic()))
        return fleet.sent
