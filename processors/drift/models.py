"""What drift judging takes and gives: column specs, parameters, findings, verdicts.

Per-column results and the dataset judgement reuse the wire schema
(`steward.schema.drift.ColumnDrift` / `DatasetDrift`), so a verdict goes onto the
verdicts topic without translation. Data-quality problems are `Finding`s, never
exceptions: a window with a missing or empty column is still judged on the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_validator

from steward.schema.drift import ColumnDrift, DatasetDrift, QualityFinding
from steward.schema.records import Frozen

Kind = Literal["numerical", "categorical"]

FindingCode = Literal[
    "missing_in_reference",  # declared, absent from the reference frame
    "missing_in_current",  # declared and in the reference, absent from the window
    "unknown_in_current",  # in the window, neither declared nor in the reference
    "empty_in_reference",  # no finite, non-null value in the reference
    "empty_in_current",  # no finite, non-null value in the window
    "not_numeric",  # declared numerical, holds something else
    "infinite_values",  # +-inf dropped (as the preset's per-column test drops them)
    "stattest_failed",  # Evidently's test raised on this data
    "score_not_finite",  # the test gave NaN or inf; the verdict keeps Evidently's flag
    "no_columns",  # nothing could be judged: no dataset drift is claimed
    "profile_truncated",  # a profile's categories past its cap are not judged
    "profile_sample",  # a p-value test ran on the profile's reservoir, not the whole window
]


class ColumnSpec(Frozen):
    """A column to judge, with its declared kind (never inferred: both Steward and the
    Evidently parity report are told the same kinds)."""

    name: str
    kind: Kind


class DriftParams(Frozen):
    """Evidently's preset knobs that Steward exposes; the defaults are the preset's."""

    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Dataset drift when the share of drifted columns is at least this (>=)."""
    stattest: dict[str, str] = Field(default_factory=dict)
    """Column -> registered test name ("ks", "chisquare", "z", "wasserstein",
    "jensenshannon", "psi", ...), instead of Evidently's default choice."""
    threshold: dict[str, float] = Field(default_factory=dict)
    """Column -> threshold, instead of the test's default (0.05 p-value, 0.1 distance)."""


class CalibratedParams(Frozen):
    """Steward's calibrated verdict: significance controlled across columns, effect gated.

    The defaults keep a stationary window's chance of flagging anything at 1%, and call a
    column drifted only when Evidently's distance also says the change is material.
    """

    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """Family-wise false-alarm rate per window (Holm across its columns)."""
    min_effect: dict[Kind, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"numerical": 0.1, "categorical": 0.1})
    """Smallest distance that counts: normed Wasserstein (numerical), Jensen-Shannon
    (categorical); Evidently's own drift thresholds for these distances."""
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    """Numerical columns are tested on this many bins at the reference's quantiles."""
    min_drifted: Annotated[int, Field(ge=1)] = 1
    """Dataset drift when at least this many columns drift."""

    @model_validator(mode="after")
    def _both_kinds(self) -> CalibratedParams:
        missing = {"numerical", "categorical"} - set(self.min_effect)
        if missing:
            raise ValueError(f"min_effect needs a value for {sorted(missing)}")
        return self


class Finding(Frozen):
    """A data-quality problem in a window; the column it concerns is left unjudged."""

    code: FindingCode
    column: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.code}: {self.column}: {self.message}" if self.column else \
            f"{self.code}: {self.message}"


class DatasetVerdict(Frozen):
    """One window judged against one reference, Evidently's way."""

    drift: DatasetDrift
    """Per-column results and the dataset judgement (method "evidently")."""
    prediction: ColumnDrift | None = None
    """The prediction column's result (also among `drift.columns`), when judged."""
    findings: tuple[Finding, ...] = ()
    calibrated: DatasetDrift | None = None
    """Steward's calibrated judgement of the same columns, when asked for."""

    @property
    def columns(self) -> dict[str, ColumnDrift]:
        """Results by column name."""
        return {c.column: c for c in self.drift.columns}

    @property
    def dataset_drift(self) -> bool:
        return self.drift.dataset_drift

    @property
    def share(self) -> float:
        return self.drift.share

    def finding_texts(self) -> list[str]:
        """Findings as the verdict event's `findings` strings."""
        return [str(f) for f in self.findings]


@dataclass(frozen=True)
class Judged:
    """What a judge returns for one window: both judgements, and the findings as the
    verdict and its data-quality alert carry them."""

    evidently: DatasetDrift
    calibrated: DatasetDrift | None = None
    prediction: ColumnDrift | None = None
    findings: tuple[QualityFinding, ...] = ()
