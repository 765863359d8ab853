"""Judging a window from an edge profile instead of its raw rows.

What a profile holds decides what can be computed faithfully:

- categorical columns: exact counts, so the column's values are rebuilt exactly and
  Evidently's test (chi-square, Z, Jensen-Shannon) and the calibrated test give what
  the raw rows would give;
- numerical columns, calibrated test: exact counts on the reference's decile bins, so
  the chi-square of homogeneity is exact; the effect (normed Wasserstein) comes from
  the KLL sketch, whose quantiles are within ~0.3% in rank of the true ones (k = 1024);
- numerical columns, Evidently's verdict: a distance test (Wasserstein, Jensen-Shannon,
  chosen for references over 1,000 rows) runs on values rebuilt from the KLL sketch. A
  p-value test (KS, chosen for small references) never runs on a sketch: at large n its
  p-value turns rank error into false alarms. It runs on the reservoir, which is the
  whole window when the window fits in it, else a uniform sample of it (less power, and
  the verdict says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from processors.drift import calibrated as cal
from processors.drift import evidently_adapter as ev
from processors.drift.models import CalibratedParams, DatasetVerdict, Finding
from processors.drift.reference import (
    RefColumn,
    Reference,
    _finding,
    dataset_drift,
    evidently_column,
    n_values,
)
from steward.profiles import ProfileBuilder, ProfileSpec, categorical_values, kll_of
from steward.schema.drift import ColumnDrift
from steward.schema.profile import CategoricalProfile, FeatureProfile, NumericProfile

DISTANCES = frozenset({"wasserstein", "jensenshannon"})
"""Evidently tests that compare distributions by a distance, safe on sketch values."""


def kll_values(column: NumericProfile) -> np.ndarray:
    """`count` values with the sketch's distribution: its quantiles at mid-ranks."""
    if column.count == 0:
        return np.empty(0)
    ranks = (np.arange(column.count) + 0.5) / column.count
    return np.asarray(kll_of(column).get_quantiles(ranks.tolist()), dtype=float)


def reservoir_values(profile: FeatureProfile, name: str) -> pd.Series:
    """A column of the reservoir's rows, cleaned as a window's column is."""
    cells = [row.get(name) for row in profile.reservoir]
    values = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce")
    return values[np.isfinite(values.to_numpy(dtype=float))].astype(float)


def _categorical(column: RefColumn, profile: CategoricalProfile) -> tuple[pd.Series,
                                                                          list[Finding]]:
    values, counts = categorical_values(profile)
    found = []
    if profile.other:
        found.append(_finding("profile_truncated", column.name,
                              f"{profile.other} values beyond the profile's category cap "
                              "are not judged"))
    return pd.Series(np.repeat(np.array(values, dtype=object), counts)).infer_objects(), found


def _numerical(column: RefColumn, profile: FeatureProfile,
               data: NumericProfile) -> tuple[pd.Series, list[Finding]]:
    """The values Evidently's test for this column may be run on, and what they are."""
    approx = pd.Series(kll_values(data))
    test = column.override or ev.default_stattest(column.kind, column.rows,
                                                  n_values(column, approx))
    if test.name in DISTANCES:
        return approx, []
    sample = reservoir_values(profile, column.name)
    if profile.reservoir_of <= len(profile.reservoir):
        return sample, []
    return sample, [_finding("profile_sample", column.name,
                             f"{test.name} on the reservoir's {len(sample)} rows of "
                             f"{data.count}: no p-value from a sketch")]


def judge_profile(reference: Reference, profile: FeatureProfile,
                  calibrated: CalibratedParams | None = None) -> DatasetVerdict:
    """One window's verdict from its profile (the reference prepared as for raw rows)."""
    results: list[ColumnDrift] = []
    evidence: list[cal.ColumnEvidence] = []
    findings = list(reference.findings)
    for column in reference.columns:
        data = profile.columns.get(column.name)
        if data is None or data.kind != column.kind:
            findings.append(_finding("missing_in_current", column.name,
                                     "absent from the profile (or of another kind)"))
            continue
        if data.count == 0:
            findings.append(_finding("empty_in_current", column.name,
                                     "no non-null, finite value in the window: not judged"))
            continue
        if isinstance(data, CategoricalProfile):
            values, found = _categorical(column, data)
        else:
            values, found = _numerical(column, profile, data)
        findings.extend(found)
        result = None
        if len(values):
            result, more = evidently_column(column, values)
            findings.extend(more)
            if result is not None:
                results.append(result)
        if calibrated is not None:
            evidence.append(_evidence(reference, column, data, result, calibrated))
    findings.extend(_finding("unknown_in_current", name, "in the window but neither declared "
                             "nor in the reference") for name in profile.unknown_columns
                    if name not in reference.frame_columns)
    if not results:
        findings.append(_finding("no_columns", None, "no column could be judged"))
    return DatasetVerdict(
        drift=dataset_drift(results, reference.params.drift_share),
        prediction=next((r for r in results if r.column == reference.prediction), None),
        findings=tuple(findings),
        calibrated=cal.decide(evidence, calibrated) if calibrated is not None else None)


def _evidence(reference: Reference, column: RefColumn,
              data: NumericProfile | CategoricalProfile, result: ColumnDrift | None,
              params: CalibratedParams) -> cal.ColumnEvidence:
    prepared = reference.calibrated_column(column, params)
    if isinstance(data, CategoricalProfile):
        values, counts = categorical_values(data)
        return cal.categorical_evidence(prepared, dict(zip(values, counts, strict=True)))
    if list(prepared.edges) != list(data.edges):
        raise ValueError(f"column {column.name!r}: the profile's bins are not the reference's")
    p = cal.homogeneity_p(np.array(prepared.counts), np.array(data.bins))
    effect = result.score if result is not None and result.stattest == "wasserstein" \
        and result.score is not None else cal.normed_wasserstein(
            column.values.to_numpy(), kll_values(data), prepared.std)
    return cal.ColumnEvidence(prepared, data.count, p, effect)


def profile_rows(spec: ProfileSpec, like: FeatureProfile,
                 rows: list[dict[str, Any]]) -> FeatureProfile:
    """Raw rows of a window as a profile of `like`'s window, to merge with it."""
    builder = ProfileBuilder(spec)
    for row in rows:
        features = {k: v for k, v in row.items() if k != spec.prediction}
        builder.add(features, row.get(spec.prediction) if spec.prediction else None)
    return builder.build(like.model, like.version, like.site, None, like.window.start,
                         like.window.end, like.tier)
