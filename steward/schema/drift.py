"""Drift verdicts (one per window) and the retraining request they can lead to.

A verdict keeps everything behind it: per column the test, its threshold and score,
the window and its row counts, whether it came from raw records or a profile, and
both judgements, Evidently's defaults and Steward's calibrated one, with the one that
decides named. Verdicts travel on their own topic keyed by model, so one trigger
instance sees every site of a model and can open one retraining request for all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from steward.schema.events import Window
from steward.schema.records import Frozen, Name

Method = Literal["evidently", "calibrated"]


class ColumnDrift(Frozen):
    """One column's test in one window."""

    column: str
    kind: Literal["numerical", "categorical"]
    stattest: str
    threshold: float
    score: float | None
    """p-value (drift when below the threshold) or distance (drift when at or above)."""
    drifted: bool
    reference_rows: int
    current_rows: int
    p_value: float | None = None
    """Calibrated: the column's p-value before the correction across columns (`score` is
    the Holm-adjusted one, compared with `threshold`, the family-wise alpha)."""
    effect: float | None = None
    """Calibrated: the distance that must also reach `effect_threshold` to call drift."""
    effect_test: str | None = None
    effect_threshold: float | None = None


class DatasetDrift(Frozen):
    """A whole window's judgement under one method."""

    method: Method
    columns: list[ColumnDrift]
    drifted_columns: list[str]
    share: Annotated[float, Field(ge=0, le=1)]
    drift_share: Annotated[float, Field(gt=0, le=1)]
    dataset_drift: bool


class DriftVerdict(Frozen):
    """The verdict on one (model, version, site) window."""

    schema_: Literal["steward.drift.verdict.v1"] = Field("steward.drift.verdict.v1",
                                                         alias="schema")
    id: str
    model: Name
    version: Name
    site: Name
    window: Window
    rows: int
    source: Literal["raw", "profile"] = "raw"
    evidently: DatasetDrift
    calibrated: DatasetDrift | None = None
    decided_by: Method
    drift: bool
    """The deciding method's dataset drift: what triggers count."""
    prediction: ColumnDrift | None = None
    findings: list[str] = Field(default_factory=list)

    model_config = {"populate_by_name": True}


class WindowRef(Frozen):
    site: Name
    start: str
    end: str
    verdict_id: str
    drifted_columns: list[str]


class RetrainRequested(Frozen):
    """Data of `steward.retrain.requested`: which version, where, on what evidence."""

    schema_: Literal["steward.retrain.requested.v1"] = Field(
        "steward.retrain.requested.v1", alias="schema")
    model: Name
    version: Name
    trigger_id: str
    sites: list[Name]
    windows: list[WindowRef]
    drifted_columns: list[str]
    method: Method
    rule: str
    """e.g. '3 of the last 5 windows drifted'."""
    cooldown_s: int
    team: Name | None = None
    target: dict[str, Any] | None = None
    """Where the retraining would run (e.g. {"region": "eu-central-1"}), for residency."""
    evidence: dict[str, Any] = Field(default_factory=dict)
    """What the governance gate's policies need: counts (requests in the last 24 h) and
    cost (the retraining's estimated USD)."""


class QualityFinding(Frozen):
    """One data-quality problem: a code users can match on, the column, a sentence."""

    code: str
    column: str | None
    message: str


class DataQualityAlert(Frozen):
    """Data of `steward.data_quality`: a window's data does not fit its reference.

    Raised once per (model, version, site, code, column): a new column that stays new
    is one alert, not one per window. The verdict it came with is named.
    """

    schema_: Literal["steward.data_quality.v1"] = Field("steward.data_quality.v1",
                                                        alias="schema")
    model: Name
    version: Name
    site: Name
    window: Window
    verdict_id: str
    findings: list[QualityFinding]
