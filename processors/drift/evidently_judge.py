"""The default drift judge: Evidently's tests and Steward's calibrated verdict.

The reference is prepared once per model version (test choice, cleaned columns, bins,
profile spec) and reused for every window, raw or profiled.
"""

from __future__ import annotations

from typing import Any

from processors.drift.models import CalibratedParams, Judged
from processors.references import ReferenceData
from steward.profiles import merge
from steward.schema.drift import QualityFinding
from steward.schema.profile import FeatureProfile


class EvidentlyJudge:
    """The default judge: Evidently's tests through Steward's adapter, and Steward's
    calibrated verdict beside them, with each reference prepared once (test choice,
    cleaned columns, bins, profile spec) and reused for every window."""

    def __init__(self, params: Any = None, calibrated: CalibratedParams | None = None) -> None:
        self.params = params
        self.calibrated = calibrated or CalibratedParams()
        self._prepared: dict[tuple[str, str], tuple[ReferenceData, Any, Any]] = {}

    def _held(self, ref: ReferenceData) -> tuple[Any, Any]:
        """(prepared Reference, ProfileSpec) of this reference, built on first use."""
        held = self._prepared.get((ref.model, ref.version))
        if held is None or held[0] is not ref:
            import pandas as pd

            from processors.drift.models import ColumnSpec
            from processors.drift.reference import Reference
            from steward.profile_spec import spec_from_reference

            specs = [ColumnSpec(name=n, kind=k) for n, k in ref.columns.items()]
            prepared = Reference(pd.DataFrame(ref.rows, columns=list(ref.columns)), specs,
                                 self.params, ref.prediction)
            spec = spec_from_reference(ref.model, ref.version, ref.columns, ref.prediction,
                                       ref.rows, bins=self.calibrated.bins)
            held = self._prepared[(ref.model, ref.version)] = (ref, prepared, spec)
        return held[1], held[2]

    def spec_id(self, ref: ReferenceData) -> str:
        return self._held(ref)[1].spec_id

    def __call__(self, ref: ReferenceData, rows: list[dict[str, Any]]) -> Judged:
        import pandas as pd

        verdict = self._held(ref)[0].judge(pd.DataFrame(rows), self.calibrated)
        return _judged(verdict)

    def profile(self, ref: ReferenceData, profile: FeatureProfile,
                rows: list[dict[str, Any]]) -> Judged:
        """A profiled window; raw rows of the same window are profiled and merged in."""
        from processors.drift.profile_judge import judge_profile, profile_rows

        prepared, spec = self._held(ref)
        if rows:
            profile = merge(profile, profile_rows(spec, profile, rows))
        return _judged(judge_profile(prepared, profile, self.calibrated))


def _judged(verdict: Any) -> Judged:
    return Judged(evidently=verdict.drift, calibrated=verdict.calibrated,
                  prediction=verdict.prediction,
                  findings=tuple(QualityFinding(code=f.code, column=f.column,
                                                message=f.message) for f in verdict.findings))
