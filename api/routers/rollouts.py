"""Rollouts: declare one, resume or abort it, and read its history from stored events.

The API does not run rollouts: it validates a declaration and puts it on the rollouts
topic (keyed by model), where the `rollout` processor picks it up. The history is what
the gate let out (steps advanced, promotion, rollback, pause) plus its denials, read
from the event store, so it survives every restart of every process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api.deps import AdminDep, ReaderDep, StoreDep
from api.store import EventQuery
from steward import topics as T
from steward.bus.producer import Out
from steward.codec import JSON_HEADERS, encode_batch
from steward.errors import InvalidInput, NotFound, Unavailable
from steward.schema.records import NAME_PATTERN
from steward.schema.rollout import RolloutCommand, RolloutMessage, RolloutSpec

router = APIRouter(tags=["rollouts"])
Publish = Callable[[list[Out]], None]
SOURCE = "/steward/processors/rollout"


def _publish(request: Request, msg: RolloutMessage) -> None:
    publish: Publish | None = getattr(request.app.state, "publish", None)
    if publish is None:
        raise Unavailable("this API has no Kafka producer: rollouts cannot be declared")
    prefix = getattr(request.app.state, "topic_prefix", "")
    publish([Out(T.ROLLOUTS.full(prefix), msg.model.encode(), encode_batch([msg]),
                 JSON_HEADERS)])


@router.post("/rollouts", status_code=202)
def declare(_admin: AdminDep, request: Request,
            body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Declare a rollout (`declared_at` defaults to now); 202: on the rollouts topic."""
    body = {"declared_at": datetime.now(UTC), **body}
    try:
        spec = RolloutSpec.model_validate(body)
    except ValueError as exc:
        raise InvalidInput(f"invalid rollout: {exc}") from exc
    _publish(request, RolloutMessage(spec=spec))
    return {"rollout_id": spec.rollout_id, "model": spec.model, "phase": "pending"}


@router.post("/rollouts/{rollout_id}/{command}", status_code=202)
def command(_admin: AdminDep, request: Request, rollout_id: str, command: str,
            model: str, reason: str = "") -> dict[str, Any]:
    """`resume` a paused rollout or `abort` one (proposes a rollback to every site)."""
    try:
        cmd = RolloutCommand(rollout_id=rollout_id, model=model, command=command,  # type: ignore[arg-type]
                             at=datetime.now(UTC), reason=reason)
    except ValueError as exc:
        raise InvalidInput(f"invalid command: {exc}") from exc
    _publish(request, RolloutMessage(command=cmd))
    return {"rollout_id": rollout_id, "command": command}


@router.get("/rollouts/{rollout_id}")
def history(_reader: ReaderDep, store: StoreDep, rollout_id: str,
            model: str | None = None) -> dict[str, Any]:
    """The rollout's actions as emitted (allowed, with decision id and policy revision),
    oldest first; the last one's `phase` is where the rollout stands once applied."""
    if not re.match(NAME_PATTERN, rollout_id):
        raise InvalidInput("invalid rollout id")
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        rows = store.query_events(EventQuery(model=model, after=after, limit=1000))
        for _, event in rows:
            data = event.get("data") or {}
            own = data.get("rollout_id") or (data.get("proposal") or {}).get("rollout_id")
            if own == rollout_id and (event.get("source") == SOURCE
                                      or event.get("type") == "steward.action.denied"):
                found.append(event)
        if len(rows) < 1000:
            break
        after = rows[-1][0]
    if not found:
        raise NotFound(f"no actions of rollout {rollout_id!r} stored")
    last = found[-1].get("data") or {}
    phase = "paused" if found[-1]["type"] == "steward.action.denied" else last.get("phase")
    return {"rollout_id": rollout_id, "phase": phase, "events": found}
