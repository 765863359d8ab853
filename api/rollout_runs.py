"""Rollout analysis runs in the store, and the Prometheus gauges of rollouts read from it.

Every run the rollout processor judges arrives on the analysis topic, the ones that led
to no action too, with every measurement; they are stored once by run id (a replay
stores nothing twice) so the audit trail and the dashboards see all of them. A
rollout's phase is read from the newest of its last run and the actions stored about
it (the gate's allowed actions and denials): an action answers the run it came from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from api.store import Store
from steward import topics as T
from steward.schema import EventType
from steward.schema.rollout import RolloutAnalysis
from steward.stream import Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollout_runs (
    run_id VARCHAR PRIMARY KEY, rollout_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
    canary_version VARCHAR NOT NULL, step INTEGER NOT NULL, idx INTEGER NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL, end_ts TIMESTAMPTZ NOT NULL, phase VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL, score DOUBLE NOT NULL, proposal_id VARCHAR,
    analysis JSON NOT NULL, stored_at TIMESTAMPTZ NOT NULL
);
"""
COLUMNS = ["run_id", "rollout_id", "model", "canary_version", "step", "idx", "start_ts",
           "end_ts", "phase", "verdict", "score", "proposal_id", "analysis", "stored_at"]
SOURCE = "/steward/processors/rollout"
ACTIONS = (EventType.ROLLOUT_STARTED, EventType.ROLLOUT_STEP_ADVANCED,
           EventType.MODEL_PROMOTED, EventType.MODEL_ROLLED_BACK, EventType.ROLLOUT_PAUSED)
_LATEST = """
SELECT rollout_id, model, canary_version, step, end_ts, phase, analysis FROM rollout_runs
QUALIFY row_number() OVER (PARTITION BY rollout_id ORDER BY end_ts DESC, idx DESC) = 1
"""
_ACTIONS = f"""
SELECT json_extract_string(event, '$.data.rollout_id'), model, type, time,
       json_extract_string(event, '$.data.phase'),
       json_extract_string(event, '$.data.run.end'),
       json_extract_string(event, '$.data.canary_version'),
       coalesce(json_extract_string(event, '$.data.next_step'),
                json_extract_string(event, '$.data.step'))
FROM events WHERE source = ? AND type IN ({", ".join("?" * len(ACTIONS))})
UNION ALL
SELECT json_extract_string(event, '$.data.proposal.rollout_id'), model, type, time, 'paused',
       json_extract_string(event, '$.data.proposal.run.end'),
       json_extract_string(event, '$.data.proposal.canary_version'),
       json_extract_string(event, '$.data.proposal.step')
FROM events WHERE type = ? AND json_extract_string(event, '$.data.proposal_source') = ?
      AND json_extract_string(event, '$.data.proposal_type') <> ?
"""


class RolloutRuns:
    """Analysis runs stored once by run id; the rollouts' state read back for gauges."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def insert(self, runs: Sequence[RolloutAnalysis]) -> int:
        if not runs:
            return 0
        now = datetime.now(UTC)
        frame = pd.DataFrame([[
            a.run.run_id, a.rollout_id, a.model, a.canary_version, a.run.step, a.run.index,
            a.run.start, a.run.end, a.phase, a.run.judgement.verdict, a.run.judgement.score,
            a.proposal_id, a.model_dump_json(by_alias=True), now] for a in runs],
            columns=COLUMNS).drop_duplicates(subset=["run_id"])
        return self.store.insert_frame("rollout_runs", frame)

    def of(self, rollout_id: str, until: datetime | None = None) -> list[dict[str, Any]]:
        """A rollout's runs, oldest first (those ending by `until` when given)."""
        sql = "SELECT analysis FROM rollout_runs WHERE rollout_id = ?"
        args: list[Any] = [rollout_id]
        if until is not None:
            sql += " AND end_ts <= ?"
            args.append(until)
        with self.store.cursor() as cur:
            rows = cur.execute(sql + " ORDER BY end_ts, step, idx", args).fetchall()
        return [json.loads(r) for (r,) in rows]

    def rollouts(self) -> list[dict[str, Any]]:
        """Per rollout: model, canary, step, phase and its last run's analysis (None before
        the first run). An action counts from its run's end (its own time without a run),
        so the runs of a step it advanced to come after it."""
        now: dict[str, dict[str, Any]] = {}
        with self.store.cursor() as cur:
            for rid, model, canary, step, end, phase, doc in cur.execute(_LATEST).fetchall():
                now[rid] = {"rollout_id": rid, "model": model, "canary_version": canary,
                            "step": step, "phase": phase, "at": end, "last": json.loads(doc)}
            actions = cur.execute(_ACTIONS, [SOURCE, *ACTIONS, EventType.ACTION_DENIED, SOURCE,
                                             EventType.ROLLOUT_STARTED]).fetchall()
        for rid, model, kind, time, phase, run_end, canary, step in sorted(
                actions, key=lambda a: _at(a[5], a[3])):
            if rid is None:
                continue
            at = _at(run_end, time)
            cur_ = now.get(rid)
            if cur_ is not None and at < cur_["at"]:
                continue
            phase = "pending" if kind == EventType.ROLLOUT_STARTED else phase
            now[rid] = {"rollout_id": rid, "model": model or "", "canary_version": canary or "",
                        "step": int(step) if step is not None else 0, "phase": phase, "at": at,
                        "last": (cur_ or {}).get("last")}
        return sorted(now.values(), key=lambda r: r["rollout_id"])


def _at(run_end: str | None, time: datetime | None) -> datetime:
    if run_end is not None:
        return datetime.fromisoformat(run_end.replace("Z", "+00:00"))
    return time or datetime.min.replace(tzinfo=UTC)


class RolloutRunSink:
    """Stores the analysis runs the rollout processor emits."""

    name = "rollout-runs-sink"
    inputs = (T.ROLLOUT_ANALYSIS,)

    def __init__(self, runs: RolloutRuns) -> None:
        self.runs = runs

    def write(self, items: Sequence[tuple[RolloutAnalysis, Source]]) -> None:
        self.runs.insert([a for a, _ in items])


class RolloutGauges:
    """Prometheus gauges of every stored rollout, read at scrape time: its phase (one
    series per rollout with the current phase as a label, value 1) and step, and its last
    run's score, group scores, and per metric the result (one-hot) and effect."""

    def __init__(self, runs: RolloutRuns) -> None:
        self.runs = runs

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        base = ["rollout_id", "model"]
        phase = GaugeMetricFamily("steward_rollout_phase", "1 for the phase a rollout is in "
                                  "(pending, running, awaiting, paused, promoted, rolled_back,"
                                  " aborted).", labels=[*base, "canary_version", "phase"])
        step = GaugeMetricFamily("steward_rollout_step", "The step a rollout is at (0-based).",
                                 labels=base)
        score = GaugeMetricFamily("steward_rollout_score", "Weighted score (0-100) of a "
                                  "rollout's last analysis run.", labels=base)
        group = GaugeMetricFamily("steward_rollout_group_score", "Score (0-100) per metric "
                                  "group in a rollout's last run.", labels=[*base, "group"])
        result = GaugeMetricFamily("steward_rollout_metric_result", "1 for each metric's result "
                                   "in a rollout's last run (pass, high, low, nodata).",
                                   labels=[*base, "metric", "result"])
        effect = GaugeMetricFamily("steward_rollout_metric_effect", "Effect of each metric in a "
                                   "rollout's last run: (canary - baseline) / baseline, or "
                                   "the difference for shares.", labels=[*base, "metric"])
        for r in self.runs.rollouts():
            key = [r["rollout_id"], r["model"]]
            phase.add_metric([*key, r["canary_version"], r["phase"]], 1)
            step.add_metric(key, r["step"])
            if r["last"] is None:
                continue
            j = r["last"]["run"]["judgement"]
            score.add_metric(key, j["score"])
            for g, value in j["group_scores"].items():
                group.add_metric([*key, g], value)
            for m in j["measurements"]:
                result.add_metric([*key, m["metric"], m["result"]], 1)
                if m["effect"] is not None:
                    effect.add_metric([*key, m["metric"]], m["effect"])
        yield from (phase, step, score, group, result, effect)
