"""What an action on the actions topic says a site should serve.

A promotion makes its canary the one version of the sites it names; a rollback (a
rollout's, or the canary-latency processor's) makes the baseline the one version of its
sites; a rollout's step advance accepts both while the rollout runs. Other actions
(retraining, denials, ...) say nothing about versions. Pure: CloudEvent in, expectations
out, so the fleet processor and its tests share it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from steward.schema import EventType
from steward.schema.fleet import Expectation


def expectations(event: CloudEvent) -> list[tuple[str, str, Expectation]]:
    """(model, site, expectation) for every site the action reaches; [] if none."""
    etype = event.get_type()
    data = event.get_data()
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return []
    versions, kind = _versions(etype, data)
    if not versions:
        return []
    sites = data.get("sites") or ([data["site"]] if data.get("site") else [])
    time = event.get_time()
    if not isinstance(time, datetime):
        return []
    expect = Expectation(versions=versions, kind=kind, since=time,  # type: ignore[arg-type]
                         event_id=event.get_id(), event_type=etype,
                         rollout_id=data.get("rollout_id"))
    return [(data["model"], site, expect) for site in sites if isinstance(site, str)]


def _versions(etype: str, data: dict[str, Any]) -> tuple[list[str], str]:
    canary, baseline = data.get("canary_version"), data.get("baseline_version")
    if etype == EventType.MODEL_PROMOTED:
        version = canary or data.get("version")
        return ([version] if isinstance(version, str) else []), "promoted"
    if etype == EventType.MODEL_ROLLED_BACK:
        return ([baseline] if isinstance(baseline, str) else []), "rolled_back"
    if etype == EventType.ROLLOUT_STEP_ADVANCED and isinstance(canary, str) \
            and isinstance(baseline, str):
        return sorted({baseline, canary}), "in_progress"
    return [], ""
