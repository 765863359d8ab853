"""The lineage of one action: the event, the decision that let it out (or the denial),
and the processor evidence behind it, assembled from the store's tables.

An auditor asks "why did this happen?" about one action id and should not have to join
four tables by hand. The answer follows the ids Steward already writes: the gate's
decision names the proposal (`proposal_id` = the action's id, kept unchanged when it is
allowed), a denial event names both, a retraining request names its drift verdicts
(`windows[].verdict_id`), a rollback carries its canary window and stats in its data,
and a rollout's action its analysis run, whose rollout's earlier runs the store keeps.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from api.decisions import DecisionStore
from api.rollout_runs import RolloutRuns
from api.store import Store
from api.verdicts import VerdictStore
from steward.schema import EventType

CANARY_FIELDS = ("check", "reason", "window", "baseline", "canary", "ratio", "threshold",
                 "min_samples", "site", "canary_version", "baseline_version")


def _events(store: Store, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    with store.cursor() as cur:
        return [json.loads(doc) for (doc,) in cur.execute(sql, args).fetchall()]


def stored_event(store: Store, event_id: str) -> dict[str, Any] | None:
    found = _events(store, "SELECT event FROM events WHERE id = ? ORDER BY seq LIMIT 1",
                    [event_id])
    return found[0] if found else None


def denial_of(store: Store, proposal_id: str) -> dict[str, Any] | None:
    """The newest `steward.action.denied` event about a proposal, if any."""
    found = _events(store, "SELECT event FROM events WHERE type = ? AND "
                           "json_extract_string(event, '$.data.proposal_id') = ? "
                           "ORDER BY seq DESC LIMIT 1", [EventType.ACTION_DENIED, proposal_id])
    return found[0] if found else None


def _runs(data: dict[str, Any], runs: RolloutRuns | None) -> list[dict[str, Any]]:
    """The rollout's stored analysis runs up to the action's (all of them for an abort)."""
    rid, run = data.get("rollout_id"), data.get("run")
    if runs is None or not isinstance(rid, str):
        return []
    end = run.get("end") if isinstance(run, dict) else None
    return runs.of(rid, datetime.fromisoformat(end.replace("Z", "+00:00")) if end else None)


def evidence(proposal_type: str | None, data: dict[str, Any], verdicts: VerdictStore,
             runs: RolloutRuns | None = None) -> dict[str, Any]:
    """What the proposing processor judged: drift verdicts (with their windows and
    per-column stats) for a retraining request, the canary window for a rollback; for a
    rollout's action, its analysis run and every earlier run of the rollout (all their
    measurements), and when the closed loop started it, the drift verdicts behind the
    retraining request it answers and the request's id."""
    if isinstance(data.get("retrain_trigger_id"), str):
        ids = [i for i in data.get("drift_verdict_ids") or [] if isinstance(i, str)]
        got = {i: verdicts.get(i) for i in ids}
        return {"kind": "loop", "verdicts": [v for v in got.values() if v is not None],
                "missing_verdicts": [i for i, v in got.items() if v is None],
                "canary": data.get("run"), "retrain_trigger_id": data["retrain_trigger_id"],
                "rollout_id": data.get("rollout_id"), "runs": _runs(data, runs)}
    if isinstance(data.get("rollout_id"), str) and "run" in data:
        return {"kind": "rollout", "verdicts": [], "missing_verdicts": [],
                "canary": data.get("run"), "rollout_id": data["rollout_id"],
                "runs": _runs(data, runs)}
    if proposal_type == EventType.RETRAIN_REQUESTED:
        ids = [w.get("verdict_id") for w in data.get("windows", []) if isinstance(w, dict)]
        found = {i: verdicts.get(i) for i in ids if isinstance(i, str)}
        return {"kind": "drift", "verdicts": [v for v in found.values() if v is not None],
                "missing_verdicts": [i for i, v in found.items() if v is None], "canary": None}
    if proposal_type == EventType.MODEL_ROLLED_BACK:
        canary = {k: data[k] for k in CANARY_FIELDS if k in data}
        missing = [k for k in ("window", "baseline", "canary") if k not in canary]
        return {"kind": "canary", "verdicts": [], "missing_verdicts": missing,
                "canary": canary}
    return {"kind": "none", "verdicts": [], "missing_verdicts": [], "canary": None}


def lineage(action_id: str, store: Store, decisions: DecisionStore,
            verdicts: VerdictStore, runs: RolloutRuns | None = None) -> dict[str, Any] | None:
    """Everything behind `action_id` (an action's id, a proposal's, or a denial event's);
    None when the store knows nothing of it."""
    event = stored_event(store, action_id)
    if event is not None and event.get("type") == EventType.ACTION_DENIED:
        denial, proposal_id = event, event["data"]["proposal_id"]
        wanted = event["data"].get("decision_id")
    else:
        proposal_id = action_id
        denial = denial_of(store, action_id)
        wanted = (event or {}).get("decisionid") or (denial or {}).get("data", {}).get(
            "decision_id")
    found = decisions.chained("proposal_id", proposal_id)
    if event is None and denial is None and not found:
        return None
    decision = next((d for d in found if d["decision"]["decision_id"] == wanted),
                    found[-1] if found else None)
    if event is not None and event is not denial:
        proposal_type, data = event.get("type"), event.get("data") or {}
    elif denial is not None:
        proposal_type, data = denial["data"]["proposal_type"], denial["data"]["proposal"]
    else:
        logged = decision["decision"]  # not stored yet: the proposal's data as evaluated
        proposal_type, data = logged["proposal_type"], logged["input"].get("data", {})
    behind = evidence(proposal_type, data if isinstance(data, dict) else {}, verdicts, runs)
    complete = (event is not None or denial is not None) and decision is not None \
        and not behind["missing_verdicts"]
    return {"action_id": action_id, "proposal_id": proposal_id,
            "event": event if event is not denial else None, "denial": denial,
            "decision": decision, "evidence": behind, "complete": complete}
