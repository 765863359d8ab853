"""Every analysis run stored once, the rollout gauges read from them and the stored actions
(phase, step, score, group scores, per-metric results and effects), and the audit trail
of a rollout's action carrying every run before it, all measurements included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from api.app import create_app
from api.rollout_runs import RolloutRunSink
from api.sink import row_of
from api.store import Store
from processors.rollout import Rollouts
from steward import topics as T
from steward.schema import EventType
from steward.stream import Source, run_steps
from tests.processors.test_rollout import SPEC, allow, closer, decl, interval

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = {"rollout_id": SPEC.rollout_id, "model": "fraud"}


@pytest.fixture
def app(tmp_path):
    store = Store(tmp_path / "steward.duckdb")
    app = create_app(store, CollectorRegistry(), {})
    yield app
    store.close()


def judged() -> tuple[list, list]:
    """Two passing runs of step 0 and the step advance they lead to (test_rollout's
    healthy canary), split into analysis records and proposals."""
    _, out = run_steps(Rollouts(), [decl(), *interval(0), *interval(1), closer(1)], T0)
    runs = [(e.record, Source(T.ROLLOUT_ANALYSIS.name, 0, i)) for i, e in enumerate(out)
            if e.topic is T.ROLLOUT_ANALYSIS]
    return runs, [e for e in out if e.topic is T.PROPOSALS]


def test_runs_stored_once_and_gauges_follow_the_actions(app):
    registry: CollectorRegistry = app.state.registry
    runs, proposals = judged()
    sink = RolloutRunSink(app.state.rollout_runs)
    sink.write(runs)
    sink.write(runs)  # a replay stores nothing twice
    assert [r["run"]["index"] for r in app.state.rollout_runs.of(SPEC.rollout_id)] == [0, 1]

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {**KEY, **labels})

    # the last run proposed a step advance: awaiting the gate
    assert value("steward_rollout_phase", canary_version="2.0", phase="awaiting") == 1
    assert value("steward_rollout_score") == 100.0
    assert value("steward_rollout_group_score", group="accuracy") == 100.0
    assert value("steward_rollout_metric_result", metric="latency_ms", result="pass") == 1
    assert value("steward_rollout_metric_effect", metric="accuracy") == \
        runs[1][0].run.judgement.measurements[2].effect
    store: Store = app.state.store
    store.insert_events([row_of(e, Source(T.ACTIONS.name, 0, i))
                         for i, e in enumerate(allow(proposals))])
    assert value("steward_rollout_phase", canary_version="2.0", phase="running") == 1
    assert value("steward_rollout_phase", canary_version="2.0", phase="awaiting") is None
    assert value("steward_rollout_step") == 1  # advanced to the second step


def test_audit_of_a_rollout_action_carries_every_run(app):
    runs, proposals = judged()
    RolloutRunSink(app.state.rollout_runs).write(runs)
    (advanced,) = allow(proposals)
    app.state.store.insert_events([row_of(advanced, Source(T.ACTIONS.name, 0, 0))])
    body = TestClient(app).get(f"/audit/actions/{advanced.get_id()}").json()
    assert body["event"]["type"] == EventType.ROLLOUT_STEP_ADVANCED
    ev = body["evidence"]
    assert (ev["kind"], ev["rollout_id"]) == ("rollout", SPEC.rollout_id)
    assert ev["canary"]["run_id"] == runs[1][0].run.run_id
    assert [r["run"]["judgement"]["verdict"] for r in ev["runs"]] == ["pass", "pass"]
    assert [m["metric"] for m in ev["runs"][0]["run"]["judgement"]["measurements"]] == \
        ["latency_ms", "error_rate", "accuracy"]
