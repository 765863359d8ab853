"""A new model version, registered: what closes the drift -> retrain -> rollout loop.

Training happens outside Steward. When a retrained version is ready, whoever built it
registers it (`POST /models/{model}/versions`) with the retraining request it answers and
the evidence a promotion needs (offline evaluation metrics, whether a model card exists,
the artifact). The record travels on the rollouts topic, keyed by model, so the `rollout`
processor sees it in order with the model's rollouts and the gate's answers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from steward.schema.records import Frozen, Name


class ModelRegistered(Frozen):
    """A version ready to be rolled out, and the retraining request it answers."""

    schema_: Literal["steward.model.registered.v1"] = Field("steward.model.registered.v1",
                                                            alias="schema")
    model: Name
    version: Name
    retrain_trigger_id: str | None = None
    """The `trigger_id` of the `steward.retrain.requested` this version answers; without
    one, nothing starts automatically (declare a rollout instead)."""
    eval: dict[str, float] = Field(default_factory=dict)
    """Offline evaluation metrics (e.g. auc, recall): the promotion policy's thresholds."""
    model_card: bool = False
    artifact: dict[str, Any] | None = None
    """e.g. {"format": "onnx", "quantisation": "int8", "memory_gb": 2}: the hardware policy."""
    registered_at: AwareDatetime

    model_config = {"populate_by_name": True}
