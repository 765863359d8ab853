"""A reference prepared once, then windows judged against it cheaply.

Everything that depends only on the reference is done when it is built: each
column's non-null values (cleaned as the preset cleans them: inf -> NaN, dropped),
their count, and, for low-cardinality columns, their distinct values. Numerical
values are kept sorted: KS and Wasserstein sort anyway, and Wasserstein runs ~30%
faster on sorted input at 10,000 rows. Its one trace: Wasserstein's normalising
`np.std` sums in another order, so its score can differ from the report's in the last
bit (seen in 14 of 74 parity columns; every other test is bit-identical). A window then
costs a cleaning pass and Evidently's test per column, nothing of a Report's extras
(correlations, histograms, plots, each column computed three times).

The verdict is the one Evidently's `DataDriftPreset` gives on the same data with the
same declared column kinds; where the preset would raise (a missing or empty column)
Steward records a `Finding` and judges the other columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from processors.drift import calibrated as cal
from processors.drift import evidently_adapter as ev
from processors.drift.models import (
    CalibratedParams,
    ColumnSpec,
    DatasetVerdict,
    DriftParams,
    Finding,
    FindingCode,
    Kind,
)
from steward.schema.drift import ColumnDrift, DatasetDrift

_STATTEST_ERRORS = (ValueError, TypeError, ArithmeticError)
"""What a test may raise on odd data (scipy's checks, empty keys); reported, not raised."""


@dataclass(frozen=True, slots=True)
class RefColumn:
    """One reference column, ready for judging."""

    name: str
    kind: Kind
    values: pd.Series
    """Non-null, finite values; sorted when numerical."""
    uniques: frozenset | None
    """Distinct values when fewer than the selection counts to, else None."""
    override: ev.Stattest | None
    threshold: float | None

    @property
    def rows(self) -> int:
        return len(self.values)


def clean(series: pd.Series) -> tuple[pd.Series, int]:
    """The preset's cleaning (`get_one_column_drift`): inf -> NaN, then dropna.

    Also returns how many infinite values went (a finding: the preset's dataset count
    keeps them when the column has no NaN, its per-column test drops them).
    """
    data = series.to_numpy()
    if data.dtype.kind == "f":  # fast path, same rows kept
        keep = np.isfinite(data)
        if keep.all():
            return series, 0
        return series[keep], int(np.isinf(data).sum())
    if data.dtype.kind in "iub":
        return series, 0
    replaced = series.replace([-np.inf, np.inf], np.nan)
    return replaced.dropna(), int(replaced.isna().sum() - series.isna().sum())


def _numeric(series: pd.Series) -> bool:
    """The preset's check for numerical columns (after cleaning)."""
    return pd.api.types.is_numeric_dtype(series)


def _finding(code: FindingCode, column: str | None, message: str) -> Finding:
    return Finding(code=code, column=column, message=message)


class Reference:
    """A reference frame prepared for judging windows (build once per model version)."""

    def __init__(self, frame: pd.DataFrame, columns: Sequence[ColumnSpec],
                 params: DriftParams | None = None, prediction: str | None = None) -> None:
        self.params = params or DriftParams()
        self.specs = tuple(columns)
        self.prediction = prediction
        self.frame_columns = frozenset(frame.columns)
        self._check_params()
        self.columns: tuple[RefColumn, ...]
        self.findings: tuple[Finding, ...]
        self.columns, self.findings = self._prepare(frame)
        self._calibrated: dict[tuple[str, int], cal.CalibratedColumn] = {}

    def _check_params(self) -> None:
        """Configuration errors raise: unknown columns, tests unfit for the kind."""
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"columns declared twice: {names}")
        unknown = (set(self.params.stattest) | set(self.params.threshold)) - set(names)
        if unknown:
            raise ValueError(f"drift params name undeclared columns: {sorted(unknown)}")
        if self.prediction is not None and self.prediction not in names:
            raise ValueError(f"prediction column {self.prediction!r} is not declared")
        kinds = {s.name: s.kind for s in self.specs}
        for column, name in self.params.stattest.items():
            ev.stattest_by_name(name, kinds[column])

    def _prepare(self, frame: pd.DataFrame) -> tuple[tuple[RefColumn, ...], tuple[Finding, ...]]:
        ready: list[RefColumn] = []
        findings: list[Finding] = []
        for spec in self.specs:
            column, found = self._prepare_column(frame, spec)
            findings.extend(found)
            if column is not None:
                ready.append(column)
        return tuple(ready), tuple(findings)

    def _prepare_column(self, frame: pd.DataFrame,
                        spec: ColumnSpec) -> tuple[RefColumn | None, list[Finding]]:
        """A column's cleaned values and what the selection needs of them, or why not."""
        values, found = cleaned(frame, spec.name, spec.kind, "reference")
        if values is None:
            return None, found
        if spec.kind == "numerical":
            values = pd.Series(np.sort(values.to_numpy()), name=spec.name)
        uniques = pd.unique(values.to_numpy())
        override = self.params.stattest.get(spec.name)
        return RefColumn(
            name=spec.name, kind=spec.kind, values=values,
            uniques=frozenset(uniques.tolist()) if len(uniques) < ev.N_VALUES_CAP else None,
            override=ev.stattest_by_name(override, spec.kind) if override else None,
            threshold=self.params.threshold.get(spec.name),
        ), found

    def judge(self, current: pd.DataFrame,
              calibrated: CalibratedParams | None = None) -> DatasetVerdict:
        """One window's verdict: per column, the dataset share, the prediction; with
        `calibrated`, Steward's calibrated judgement of the same cleaned columns too."""
        results: list[ColumnDrift] = []
        evidence: list[cal.ColumnEvidence] = []
        findings = list(self.findings)
        for column in self.columns:
            values, found = current_values(column, current)
            if values is not None:
                result, more = evidently_column(column, values)
                found += more
                if result is not None:
                    results.append(result)
                if calibrated is not None:
                    evidence.append(self._evidence(column, values, result, calibrated))
            findings.extend(found)
        findings.extend(self._unknown_columns(current))
        if not results:
            findings.append(_finding("no_columns", None, "no column could be judged"))
        return DatasetVerdict(
            drift=dataset_drift(results, self.params.drift_share),
            prediction=next((r for r in results if r.column == self.prediction), None),
            findings=tuple(findings),
            calibrated=cal.decide(evidence, calibrated) if calibrated is not None else None,
        )

    def calibrated_column(self, column: RefColumn,
                          params: CalibratedParams) -> cal.CalibratedColumn:
        """The reference side of the calibrated test (bins, counts, std), built once."""
        key = (column.name, params.bins)
        prepared = self._calibrated.get(key)
        if prepared is None:
            prepared = self._calibrated[key] = cal.CalibratedColumn.of(
                column.name, column.kind, column.values.to_numpy(), params.bins)
        return prepared

    def _evidence(self, column: RefColumn, values: pd.Series, result: ColumnDrift | None,
                  params: CalibratedParams) -> cal.ColumnEvidence:
        """The calibrated test's evidence for one column of raw rows."""
        prepared = self.calibrated_column(column, params)
        if column.kind == "categorical":
            return cal.categorical_evidence(prepared, values.value_counts(sort=False).to_dict())
        reuse = result.score if result is not None and result.stattest == "wasserstein" \
            and result.score is not None else None
        return cal.numerical_evidence(prepared, column.values.to_numpy(),
                                      values.to_numpy(dtype=float), reuse)

    def _unknown_columns(self, current: pd.DataFrame) -> list[Finding]:
        """Window columns the reference has never seen and nobody declared."""
        declared = {s.name for s in self.specs}
        return [_finding("unknown_in_current", str(name),
                         "in the window but neither declared nor in the reference")
                for name in current.columns
                if name not in self.frame_columns and name not in declared]


def _infinite(column: str, count: int, where: str) -> list[Finding]:
    if not count:
        return []
    return [_finding("infinite_values", column,
                     f"{count} infinite value(s) in the {where} dropped before the test")]


def cleaned(frame: pd.DataFrame, name: str, kind: Kind,
            where: Literal["reference", "window"]) -> tuple[pd.Series | None, list[Finding]]:
    """A column cleaned as the preset cleans it (inf dropped, NaN dropped), or None and
    why not: absent, empty, or not numbers where numbers were declared."""
    side = "reference" if where == "reference" else "current"
    if name not in frame.columns:
        return None, [_finding(f"missing_in_{side}", name,  # type: ignore[arg-type]
                               f"absent from the {where}: not judged")]
    values, infinite = clean(frame[name])
    found = _infinite(name, infinite, where)
    if values.empty:
        return None, [*found, _finding(f"empty_in_{side}", name,  # type: ignore[arg-type]
                                       f"no non-null, finite value in the {where}: not judged")]
    if kind == "numerical" and not _numeric(values):
        return None, [_finding("not_numeric", name,
                               f"declared numerical, the {where} holds {values.dtype}")]
    return values, found


def current_values(column: RefColumn,
                   current: pd.DataFrame) -> tuple[pd.Series | None, list[Finding]]:
    """A window's column, cleaned (see `cleaned`)."""
    return cleaned(current, column.name, column.kind, "window")


def evidently_column(column: RefColumn,
                     values: pd.Series) -> tuple[ColumnDrift | None, list[Finding]]:
    """One cleaned column of a window, tested by Evidently's default (or chosen) test."""
    test = column.override or ev.default_stattest(column.kind, column.rows,
                                                  n_values(column, values))
    try:
        score, drifted, threshold = ev.run_stattest(test, column.values, values, column.kind,
                                                    column.threshold)
    except _STATTEST_ERRORS as exc:
        return None, [_finding("stattest_failed", column.name, f"{test.name}: {exc}")]
    found = []
    if not np.isfinite(score):
        found.append(_finding("score_not_finite", column.name,
                              f"{test.name} gave {score}; its drift flag is kept"))
    return ColumnDrift(
        column=column.name, kind=column.kind, stattest=test.name, threshold=threshold,
        score=score if np.isfinite(score) else None, drifted=drifted,
        reference_rows=column.rows, current_rows=len(values),
    ), found


def n_values(column: RefColumn, current: pd.Series) -> int:
    """Distinct values in reference and window together, counted up to the cap."""
    if column.uniques is None:
        return ev.N_VALUES_CAP
    together = column.uniques.union(pd.unique(current.to_numpy()).tolist())
    return min(len(together), ev.N_VALUES_CAP)


def dataset_drift(results: list[ColumnDrift], drift_share: float) -> DatasetDrift:
    """The preset's rule (`get_dataset_drift`): drift when drifted/judged >= drift_share."""
    drifted = [r.column for r in results if r.drifted]
    share = len(drifted) / len(results) if results else 0.0
    return DatasetDrift(
        method="evidently", columns=results, drifted_columns=drifted, share=share,
        drift_share=drift_share, dataset_drift=bool(results) and share >= drift_share,
    )


def judge(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[ColumnSpec],
          params: DriftParams | None = None, prediction: str | None = None) -> DatasetVerdict:
    """Judge one window in one call (builds the `Reference`; keep one to judge many)."""
    return Reference(reference, columns, params, prediction).judge(current)
