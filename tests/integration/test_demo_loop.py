"""The demo's whole loop on real parts, in-process: `steward demo`'s fleet posts to a real
collector; the processors are built from settings as `steward processor NAME` builds them
(the demo's own settings: small drift windows, a quick trigger, the rollout template),
with the shipped policies in the gate and the API storing everything. Within a bound, one
canary is rolled back (1.5.0, slow from the start) and one promoted (1.4.1, registered
for the retraining request the drift at factory-berlin raised), both on the actions topic;
the promotion's audit lineage leads back through its rollout and analysis runs to the
retraining request and the drift windows behind it."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from api.rollout_runs import RolloutRunSink
from processors.registry import build
from processors.settings import ProcessorSettings
from steward import demo
from steward import topics as T
from steward.bus.producer import Producer
from steward.schema import EventType

STAGES = ("canary-latency", "drift-judge", "retrain-trigger", "rollout-samples", "rollout")
FAST = {"STEWARD_DRIFT__WINDOW_S": "5", "STEWARD_DRIFT__MIN_ROWS": "30",
        "STEWARD_ROLLOUT_SAMPLES__BUCKET_S": "5", "STEWARD_ROLLOUT_SAMPLES__GRACE_S": "1",
        "STEWARD_ROLLOUTS__TEMPLATES": json.dumps({demo.MODEL: {
            **demo.ROLLOUT_TEMPLATE, "interval_s": 5, "grace_s": 1}}),
        "STEWARD_CANARIES": json.dumps([{**demo.DEMO_CANARY, "window_s": 5, "grace_s": 1}])}
"""The demo's settings, shrunk: 5 s drift windows (the drift site posts 10 records/s),
rollout buckets and intervals, and canary windows."""


def _actions(topic_reader, kafka) -> dict[str, list[dict]]:
    """Allowed actions on the actions topic by CloudEvents type (binary mode headers)."""
    found: dict[str, list[dict]] = {}
    for m in topic_reader(T.ACTIONS.full(kafka.topic_prefix)):
        found.setdefault(m["headers"].get("ce_type", ""), []).append(m)
    return found


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_demo_loop_promotes_one_canary_and_rolls_back_another(
        kafka, start_api, start_collector, start_gate, start_runner, services, wait,
        topic_reader, monkeypatch):
    api, _ = start_api()
    app = api.server.config.app
    producer = Producer(kafka)
    services.append(producer)
    app.state.publish, app.state.topic_prefix = producer.send_all, kafka.topic_prefix
    start_runner(RolloutRunSink(app.state.rollout_runs))
    start_gate(None, api.url)
    for name, value in {**demo.DEMO_DRIFT_ENV, **FAST, "STEWARD_API_URL": api.url}.items():
        monkeypatch.setenv(name, value)
    settings = ProcessorSettings()
    for name in STAGES:
        start_runner(build(name, settings))
    collector = start_collector()
    demo.register_reference(api.url)
    stop = threading.Event()
    cfg = demo.DemoConfig(collector_url=collector.url, api_url=api.url, regress_after_s=0,
                          drift_after_s=0)
    fleet = threading.Thread(target=demo.run, args=(cfg, stop), daemon=True)
    fleet.start()
    try:
        acts = wait(lambda: (a := _actions(topic_reader, kafka)).get(EventType.MODEL_PROMOTED)
                    and a.get(EventType.MODEL_ROLLED_BACK) and a, timeout_s=200, interval_s=2,
                    what="a promotion and a rollback on the actions topic")
    finally:
        stop.set()
        fleet.join(timeout=15)
    (rolled,) = acts[EventType.MODEL_ROLLED_BACK]
    assert json.loads(rolled["value"])["canary_version"] == demo.CANARY
    (promoted,) = acts[EventType.MODEL_PROMOTED]
    assert promoted["key"] == demo.MODEL
    pid = promoted["headers"]["ce_id"]

    lineage = wait(lambda: (x := httpx.get(f"{api.url}/audit/actions/{pid}").json())
                   .get("complete") and x, what="the promotion's complete lineage")
    data, ev = lineage["event"]["data"], lineage["evidence"]
    assert (data["version"], data["baseline_version"]) == (demo.RETRAINED, demo.BASELINE)
    assert lineage["decision"]["decision"]["allowed"] and ev["kind"] == "loop"
    # promotion -> rollout: its analysis runs, the last one the promotion's, all passing
    assert ev["rollout_id"] == data["rollout_id"]
    assert ev["runs"] and ev["runs"][-1]["run"]["run_id"] == data["run"]["run_id"]
    assert ev["runs"][-1]["proposal_id"] == pid
    # rollout -> retraining request: the started rollout and the request name one trigger
    events = httpx.get(f"{api.url}/events").json()["events"]
    (started,) = [e for e in events if e["type"] == EventType.ROLLOUT_STARTED]
    (retrain,) = [e for e in events if e["type"] == EventType.RETRAIN_REQUESTED]
    trigger = retrain["data"]["trigger_id"]
    assert ev["retrain_trigger_id"] == started["data"]["retrain_trigger_id"] == trigger
    assert started["data"]["rollout_id"] == data["rollout_id"]
    # retraining request -> drift windows: the verdicts it names, at the drift site (not
    # each stored one drifted: the store keeps a window's first verdict, and a window the
    # judge judged again after a rebalance can differ from the one the trigger counted)
    windows = {w["verdict_id"] for w in retrain["data"]["windows"]}
    assert windows and {v["id"] for v in ev["verdicts"]} == windows
    assert ev["missing_verdicts"] == []
    assert {v["site"] for v in ev["verdicts"]} == {demo.DRIFT_SITE}
    assert any(v["drift"] for v in ev["verdicts"])
