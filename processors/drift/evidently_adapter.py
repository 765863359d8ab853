"""The one module that imports Evidently's `legacy` namespace.

Steward's drift verdicts must be the ones Evidently's `DataDriftPreset` would give,
so they are computed by Evidently's own code: its default test selection
(`_get_default_stattest` in `evidently/legacy/calculations/stattests/registry.py`)
and its registered `StatTest` objects (KS, chi-square, Z, normed Wasserstein,
Jensen-Shannon, ...). Those live in `evidently.legacy` and are private in part, so a
move in a later Evidently release should break this file only; the parity tests
(`tests/processors/drift/test_evidently_parity.py`) say when it did.

Nothing of Evidently's types leaves this module: callers get `Stattest`, a small
frozen wrapper, and plain floats and bools.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import (
    StatTest,
    _get_default_stattest,
    _registered_stat_tests,
    get_registered_stattest,
)
from evidently.legacy.core import ColumnType

Kind = Literal["numerical", "categorical"]

_TYPES: dict[str, ColumnType] = {
    "numerical": ColumnType.Numerical,
    "categorical": ColumnType.Categorical,
}

N_VALUES_CAP = 100
"""Distinct values are counted up to here for the default selection, no further.

`_get_default_stattest` compares the count of distinct values (reference and current
together) with 2 and 5 only; any count from 100 on selects what 100 selects, and
counting a continuous column's values in every window would cost more than its test.
"""


@dataclass(frozen=True, slots=True)
class Stattest:
    """One of Evidently's registered tests, as Steward sees it."""

    name: str
    """Registry name: "ks", "chisquare", "z", "wasserstein", "jensenshannon", ..."""
    display_name: str
    """What a Report shows as the column's `method` when Evidently chose it."""
    default_threshold: float
    _impl: Any  # evidently StatTest; opaque outside this module

    def __repr__(self) -> str:
        return f"Stattest({self.name!r})"


def _wrap(test: StatTest) -> Stattest:
    """Evidently's object in Steward's wrapper."""
    return Stattest(test.name, test.display_name, float(test.default_threshold), test)


def column_type(kind: Kind) -> ColumnType:
    """Evidently's column type for a declared kind; a ValueError for anything else."""
    try:
        return _TYPES[kind]
    except KeyError:
        raise ValueError(f"column kind must be numerical or categorical, not {kind!r}") from None


@lru_cache(maxsize=256)
def stattest_by_name(name: str, kind: Kind) -> Stattest:
    """A registered test by name, for a column of that kind, as a per-column override.

    Raises ValueError (Evidently's own message) for an unknown name, or a test that
    Evidently does not allow on that kind (e.g. "z" on a numerical column).
    """
    return _wrap(get_registered_stattest(name, column_type(kind)))


def registered_names() -> list[str]:
    """Every test name Evidently registered (for error messages and docs)."""
    return sorted(_registered_stat_tests)


def name_from_label(label: str) -> str:
    """Registry name behind a Report's `method` label (a display name, or a name)."""
    if label in _registered_stat_tests:
        return label
    for name, by_type in _registered_stat_tests.items():
        if any(t.display_name == label for t in by_type.values()):
            return name
    raise ValueError(f"no registered stattest shows as {label!r}")


def default_stattest(kind: Kind, reference_rows: int, n_values: int) -> Stattest:
    """The test Evidently's defaults pick for a column: its own function decides.

    `_get_default_stattest(reference, current, type)` reads only the reference's row
    count (non-null rows: the preset drops NaN and inf first) and the number of
    distinct values in both together. Both are known before the data is, so it is
    called on probe series with exactly those two properties, and the answer cached.
    """
    if reference_rows < 1 or n_values < 1:
        raise ValueError("a test needs at least one reference row and one value")
    return _default_cached(kind, reference_rows, min(n_values, N_VALUES_CAP))


@lru_cache(maxsize=4096)
def _default_cached(kind: Kind, reference_rows: int, n_values: int) -> Stattest:
    """Evidently's choice for probes of `reference_rows` rows and `n_values` values."""
    reference = pd.Series(np.arange(reference_rows) % min(n_values, reference_rows))
    current = pd.Series(np.arange(n_values))
    return _wrap(_get_default_stattest(reference, current, column_type(kind)))


_AS_ARRAYS = frozenset({"ks"})
"""Tests whose function only hands its inputs to scipy, which makes arrays of them: given
arrays, the result is bit-identical and pandas' attribute lookups are skipped (~10% of a
1,000-row window). The others get Series, as the preset passes them: they call pandas
methods (value_counts, nunique, concat), and Wasserstein's `np.std` of a Series is
pandas' std."""


def run_stattest(test: Stattest, reference: pd.Series, current: pd.Series, kind: Kind,
                 threshold: float | None) -> tuple[float, bool, float]:
    """(score, drifted, threshold used): Evidently's test on cleaned, non-empty data.

    The comparison (p < t, p <= t for KS, distance >= t) is Evidently's, inside its
    test; `threshold=None` means the test's default, as in the preset.
    """
    ref: pd.Series | np.ndarray = reference
    cur: pd.Series | np.ndarray = current
    if test.name in _AS_ARRAYS:
        ref, cur = reference.to_numpy(), current.to_numpy()
    with np.errstate(all="ignore"):  # e.g. chi-square's x/0 for a new category: p = 0
        result = test._impl(ref, cur, column_type(kind), threshold)
    return float(result.drift_score), bool(result.drifted), float(result.actual_threshold)
