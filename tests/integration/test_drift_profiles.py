"""The drift loop from edge profiles, on real parts: a reference through the API, an edge
agent in profile mode (its spec from the API) forwarding to the collector, the drift
judge and the retraining trigger as consumer groups. Records of two sites go to the
agent; one site drifts. Each window reaches the judge as one profile, is judged from it
with the right row count, and the drifted site alone gets one retraining request."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from collector.agent.main import Agent
from collector.agent.settings import AgentSettings
from processors.drift.evidently_judge import EvidentlyJudge
from processors.drift_judge import DriftJudge, DriftSpec
from processors.references import ApiReferences
from processors.retrain_trigger import RetrainTarget, RetrainTrigger, TriggerSpec
from steward import topics as T
from steward.broker import free_port
from steward.schema import FeatureProfile
from tests.support import Served

pytestmark = pytest.mark.integration
WINDOW_S = 10
WINDOWS = 4
SITES = ("berlin", "lyon")
CHANNELS = ["pos", "web", "app"]

POLICY_DATA = {"residency": {"models": {"fraud": ["eu-central-1"]}, "sites": {
    site: {"region": "eu-central-1", "allowed_regions": ["eu-central-1"]}
    for site in ("berlin", "lyon")}}}
"""The test fleet's sites and model in the policies' data document (rules/data.json)."""
TARGETS = {"fraud": RetrainTarget(team="risk", region="eu-central-1", estimated_usd=10.0)}



def rows_in(site: str, window: int) -> int:
    """Different counts per site and window, so a verdict's rows can only be its own."""
    return 90 + 10 * window + (7 if site == "lyon" else 0)


def records(rng: np.random.Generator, t0: datetime, site: str, window: int,
            drifted: bool) -> list[dict]:
    """One window of a site; drifted: amount +3 sd, temperature +4 sd, channel all 'web'."""
    start = t0 + timedelta(seconds=WINDOW_S * window)
    n = rows_in(site, window)
    return [{"id": f"{site}-{window}-{i}", "model": "fraud", "version": "1.4.0", "site": site,
             "tier": "edge", "node": f"{site}-n1",
             "ts": (start + timedelta(seconds=i * (WINDOW_S - 1) / n)).isoformat(),
             "latency_ms": 5.0 + i % 7,
             "features": {"amount": float(rng.normal(130 if drifted else 100, 10)),
                          "temperature": float(rng.normal(60 if drifted else 40, 5)),
                          "channel": "web" if drifted else str(rng.choice(CHANNELS))},
             "prediction": float(rng.random())}
            for i in range(n)]


def test_profiles_from_an_edge_agent_drive_the_drift_loop(
        kafka, start_collector, start_api, start_runner, start_gate, services, topic_reader,
        wait, tmp_path: Path):
    rng = np.random.default_rng(7)
    api, _ = start_api()
    ref = pd.DataFrame({"amount": rng.normal(100, 10, 1000),
                        "temperature": rng.normal(40, 5, 1000),
                        "channel": rng.choice(CHANNELS, 1000), "score": rng.random(1000)})
    body = io.StringIO()
    ref.to_csv(body, index=False)
    httpx.put(f"{api.url}/references/fraud/1.4.0", content=body.getvalue().encode(),
              headers={"content-type": "text/csv"},
              params={"categorical": ["channel"], "prediction": "score"}).raise_for_status()

    start_runner(DriftJudge(DriftSpec(window_s=WINDOW_S, grace_s=0, min_rows=30),
                            ApiReferences(api.url), EvidentlyJudge()))
    trigger = start_runner(RetrainTrigger(TriggerSpec(k=2, m=3, targets=TARGETS)))
    start_gate(POLICY_DATA, api.url)
    collector = start_collector()
    settings = AgentSettings(
        collector_url=collector.url, port=free_port(), spool_dir=tmp_path / "spool",
        backoff_base_s=0.05, backoff_cap_s=0.3,
        profiles={"enabled": True, "api_url": api.url, "window_s": WINDOW_S, "grace_s": 0,
                  "tick_s": 0.2})
    agent = Agent(settings, CollectorRegistry()).start()
    services.append(agent)
    intake = Served(agent.app, settings.port)
    services.append(intake)
    assert agent.profiler is not None
    wait(lambda: agent.profiler.specs.fetch("fraud", "1.4.0"), 10, "the profile spec")

    # Windows in the recent past: each closes at the agent, then at the judge, as soon as
    # it is complete. One request per site and window, so each window is one profile.
    now = int(time.time())
    t0 = datetime.fromtimestamp(now - now % WINDOW_S - (WINDOWS + 2) * WINDOW_S, UTC)
    for w in range(WINDOWS):  # berlin drifts from window 1 on; lyon never does
        for site in SITES:
            batch = records(rng, t0, site, w, drifted=site == "berlin" and w >= 1)
            resp = httpx.post(f"{intake.url}/v1/inferences", json={"records": batch})
            assert resp.status_code == 200, resp.text

    verdict_topic = T.DRIFT_VERDICTS.full(kafka.topic_prefix)
    messages = wait(lambda: (m := topic_reader(verdict_topic)) and len(m) >= 2 * WINDOWS
                    and m, 45, f"{2 * WINDOWS} verdicts")
    verdicts = [v for m in messages for v in json.loads(m["value"])["records"]]
    assert len(verdicts) == 2 * WINDOWS
    by_site: dict[str, list[dict]] = {}
    for v in sorted(verdicts, key=lambda v: v["window"]["start"]):
        by_site.setdefault(v["site"], []).append(v)
    for site in SITES:
        got = by_site[site]
        assert [datetime.fromisoformat(v["window"]["start"]) for v in got] == \
            [t0 + timedelta(seconds=WINDOW_S * w) for w in range(WINDOWS)]
        assert [v["rows"] for v in got] == [rows_in(site, w) for w in range(WINDOWS)]
        assert {v["source"] for v in got} == {"profile"}
        assert {v["decided_by"] for v in got} == {"calibrated"}
    assert [v["drift"] for v in by_site["berlin"]] == [False] + [True] * (WINDOWS - 1)
    assert [v["drift"] for v in by_site["lyon"]] == [False] * WINDOWS
    assert {"amount", "temperature"} <= set(by_site["berlin"][1]["calibrated"]["drifted_columns"])

    # Every verdict read by the trigger, then: one request, for berlin alone.
    wait(lambda: sum(trigger.positions.values()) == 2 * WINDOWS, 10,
         "the trigger to read every verdict")
    actions = topic_reader(T.ACTIONS.full(kafka.topic_prefix))
    assert [m["headers"]["ce_type"] for m in actions] == ["steward.retrain.requested"]
    data = json.loads(actions[0]["value"])
    assert (data["model"], data["version"], data["sites"]) == ("fraud", "1.4.0", ["berlin"])
    assert data["method"] == "calibrated"
    assert [datetime.fromisoformat(w["start"]) for w in data["windows"]] == \
        [t0 + timedelta(seconds=WINDOW_S * w) for w in (1, 2)]

    # What went over the link: profiles only, one per site and window, nothing raw.
    profiles = [FeatureProfile.model_validate(r) for m in
                topic_reader(T.PROFILES.full(kafka.topic_prefix))
                for r in json.loads(m["value"])["records"]]
    assert sorted((p.site, p.rows) for p in profiles) == \
        sorted((s, rows_in(s, w)) for s in SITES for w in range(WINDOWS))
    assert topic_reader(T.INFERENCE.full(kafka.topic_prefix)) == []
    assert topic_reader(T.DEADLETTER.full(kafka.topic_prefix)) == []
