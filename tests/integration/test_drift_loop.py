"""The drift loop on real parts: a reference through the API, records through the collector,
the drift judge and the retraining trigger as consumer groups, one retrain request stored."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd

from processors.drift.evidently_judge import EvidentlyJudge
from processors.drift_judge import DriftJudge, DriftSpec
from processors.references import ApiReferences
from processors.retrain_trigger import RetrainTarget, RetrainTrigger, TriggerSpec
from steward import topics as T

POLICY_DATA = {"residency": {"models": {"fraud": ["eu-central-1"]}, "sites": {
    site: {"region": "eu-central-1", "allowed_regions": ["eu-central-1"]}
    for site in ("berlin", "lyon")}}}
"""The test fleet's sites and model in the policies' data document (rules/data.json)."""
TARGETS = {"fraud": RetrainTarget(team="risk", region="eu-central-1", estimated_usd=10.0)}

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RNG = np.random.default_rng(11)


def records(site: str, window: int, shift: float, n: int = 60) -> list[dict]:
    start = T0 + timedelta(seconds=10 * window)
    return [{"id": f"{site}-{window}-{i}", "model": "fraud", "version": "1.4.0", "site": site,
             "tier": "edge", "ts": (start + timedelta(seconds=i * 0.1)).isoformat(),
             "latency_ms": 5.0,
             "features": {"amount": float(RNG.normal(100 + shift, 10)),
                          "channel": str(RNG.choice(["pos", "web", "app"]))},
             "prediction": float(RNG.random() * (0.3 if shift else 1.0))}
            for i in range(n)]


def test_drift_at_one_site_requests_retraining_once(kafka, start_collector, start_api,
                                                    start_runner, start_gate, topic_reader,
                                                    wait):
    api, _ = start_api()
    ref = pd.DataFrame({"amount": RNG.normal(100, 10, 500),
                        "channel": RNG.choice(["pos", "web", "app"], 500),
                        "score": RNG.random(500)})
    body = io.StringIO()
    ref.to_csv(body, index=False)
    httpx.put(f"{api.url}/references/fraud/1.4.0", content=body.getvalue().encode(),
              headers={"content-type": "text/csv"},
              params={"categorical": ["channel"], "prediction": "score"}).raise_for_status()
    spec = DriftSpec(window_s=10, grace_s=0, min_rows=30)
    start_runner(DriftJudge(spec, ApiReferences(api.url), EvidentlyJudge()))
    start_runner(RetrainTrigger(TriggerSpec(k=2, m=3, targets=TARGETS)))
    start_gate(POLICY_DATA, api.url)
    url = f"{start_collector().url}/v1/inferences"
    for w in range(4):  # berlin drifts from window 1 on; lyon never does
        for site, shift in (("berlin", 30.0 if w else 0.0), ("lyon", 0.0)):
            httpx.post(url, json=records(site, w, shift)).raise_for_status()
    for site in ("berlin", "lyon"):  # close window 3
        httpx.post(url, json=records(site, 5, 0.0, n=1)).raise_for_status()

    verdicts = wait(lambda: (m := topic_reader(T.DRIFT_VERDICTS.full(kafka.topic_prefix)))
                    and len(m) == 8 and m, timeout_s=60, what="8 verdicts")
    by_site = {}
    for m in verdicts:
        for v in json.loads(m["value"])["records"]:
            by_site.setdefault(v["site"], []).append(v["drift"])
    assert by_site == {"berlin": [False, True, True, True], "lyon": [False] * 4}
    events = wait(lambda: httpx.get(f"{api.url}/events").json()["events"], timeout_s=30,
                  what="the retrain request stored")
    assert [e["type"] for e in events] == ["steward.retrain.requested"]
    data = events[0]["data"]
    assert (data["model"], data["version"], data["sites"]) == ("fraud", "1.4.0", ["berlin"])
    assert [w["start"] for w in data["windows"]] == [
        (T0 + timedelta(seconds=10 * w)).isoformat() for w in (1, 2)]
    assert "amount" in data["drifted_columns"]
    drifted = httpx.get(f"{api.url}/drift", params={"site": "berlin", "drift": True}).json()
    assert [v["window"]["start"] for v in drifted["verdicts"]] == [
        (T0 + timedelta(seconds=10 * w)).isoformat().replace("+00:00", "Z") for w in (1, 2, 3)]
    assert drifted["verdicts"][0]["evidently"]["drift_share"] == 0.5
    assert httpx.get(f"{api.url}/drift", params={"site": "lyon", "drift": True}).json()[
        "verdicts"] == []
    report = httpx.get(f"{api.url}/drift/{drifted['verdicts'][0]['id']}/report", timeout=60)
    assert report.status_code == 200 and "text/html" in report.headers["content-type"]
    assert "amount" in report.text and len(report.text) > 10_000
    assert httpx.get(f"{api.url}/drift/nope/report").status_code == 404
    metrics = httpx.get(f"{api.url}/metrics").text
    berlin = 'model="fraud",site="berlin",version="1.4.0"'
    assert f"steward_drift_dataset_drift{{{berlin}}} 1.0" in metrics
    assert f"steward_drift_window_rows{{{berlin}}} 60.0" in metrics
    assert 'steward_drift_dataset_drift{model="fraud",site="lyon",version="1.4.0"} 0.0' in metrics

    # the request passed the governance gate: its decision is on the chain, and its lineage
    # runs from the event through the decision to the verdicts behind it
    action = events[0]
    lineage = wait(lambda: (r := httpx.get(f"{api.url}/audit/actions/{action['id']}").json())
                   .get("decision") and r, timeout_s=20, what="the decision stored")
    decision = lineage["decision"]["decision"]
    assert lineage["decision"]["seq"] == 1 and decision["allowed"]
    assert decision["proposal_id"] == action["id"]
    assert decision["input"]["evidence"] == {"counts": {"retrain_requests_24h": 0},
                                             "cost": {"estimated_usd": 10.0,
                                                      "team_spent_usd": 0.0}}
    assert lineage["complete"]
    assert {v["window"]["start"] for v in lineage["evidence"]["verdicts"]} == {
        w["start"].replace("+00:00", "Z") for w in data["windows"]}
    assert httpx.get(f"{api.url}/audit/verify").json()["ok"]
