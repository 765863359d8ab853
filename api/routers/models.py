"""Model versions: register a retrained version, so the rollout that answers the drift
behind its retraining request can start.

Like a rollout declaration, a registration is validated here and put on the rollouts
topic (keyed by model); the `rollout` processor pairs it with the allowed retraining
request it names and proposes the rollout to the governance gate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from api.deps import AdminDep
from api.routers.rollouts import _publish
from steward.errors import InvalidInput
from steward.schema.registered import ModelRegistered
from steward.schema.rollout import RolloutMessage

router = APIRouter(tags=["models"])


@router.post("/models/{model}/versions", status_code=202)
def register(_admin: AdminDep, request: Request, model: str,
             body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Register `version` of `model` (with `retrain_trigger_id`, `eval`, `model_card`,
    `artifact`); 202: on the rollouts topic. `registered_at` defaults to now."""
    body = {"registered_at": datetime.now(UTC), **body, "model": model}
    try:
        version = ModelRegistered.model_validate(body)
    except ValueError as exc:
        raise InvalidInput(f"invalid model version: {exc}") from exc
    _publish(request, RolloutMessage(registered=version))
    return {"model": model, "version": version.version,
            "retrain_trigger_id": version.retrain_trigger_id}
