"""Steward's calibrated verdict: drift that is neither sampling noise nor immaterial.

Evidently's defaults raise false alarms on stationary data (see docs/drift.md): its
chi-square takes the reference's counts as exact, its 0.1 distance threshold is below
the sampling noise of small windows, and one reference serves every window. The
calibrated verdict keeps Evidently's distance as the measure of *materiality* and adds
a test of *significance* that knows both samples are samples:

- per column, a two-sample chi-square test of homogeneity on a 2 x k table: the
  reference's and the window's counts per category, or per bin for numerical columns,
  bins cut at the reference's deciles (the same bins an edge profile counts in, so a
  profile gives the very same p-value as the raw rows). Sparse cells are pooled
  (Cochran's rule: every expected count >= 5), so a 50-row window is tested honestly;
- across columns, Holm's step-down correction: the chance that a stationary window
  flags any column is at most `alpha`, however many columns there are;
- a column drifts when its Holm-adjusted p-value is <= `alpha` *and* its distance
  (Evidently's normed Wasserstein, or Jensen-Shannon for categories) is >= the effect
  threshold: a 10,000-row window can prove a shift of 0.01 standard deviations, which
  is real and does not matter.

Functions here work on counts and sorted values, not on frames: the raw path and the
profile path call the same ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.spatial import distance

from processors.drift.models import CalibratedParams, Kind
from steward.profile_spec import bin_counts, reference_edges
from steward.schema.drift import ColumnDrift, DatasetDrift

MIN_EXPECTED = 5.0
"""Cochran's rule for the chi-square approximation: pool cells expected below this."""
TESTS: dict[Kind, str] = {"numerical": "binned_chi2", "categorical": "chi2_homogeneity"}
EFFECTS: dict[Kind, str] = {"numerical": "wasserstein", "categorical": "jensenshannon"}


def homogeneity_p(reference: np.ndarray, current: np.ndarray) -> float:
    """p-value of the chi-square test that two count vectors (aligned by cell) come from
    one distribution.

    Cells are pooled where the reference says they are sparse: a cell whose reference
    share times the smaller sample is under 5 joins a pool, smallest first, until the pool
    itself reaches 5. The rule reads the reference and the sizes only, never the window's
    counts (pooling on observed counts drops degrees of freedom but not the statistic, and
    false alarms quadruple). Categories the reference never saw form a cell of their own.
    With fewer than two cells left there is nothing to test (p = 1).
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    n_ref, n_cur = ref.sum(), cur.sum()
    if n_ref == 0 or n_cur == 0:
        return 1.0
    expected = ref / n_ref * min(n_ref, n_cur)
    seen = ref > 0
    cells: list[tuple[float, float]] = []
    pool = [0.0, 0.0, 0.0]  # reference, window, expected
    for i in np.flatnonzero(seen)[np.argsort(ref[seen], kind="stable")]:
        if expected[i] < MIN_EXPECTED or (pool[2] and pool[2] < MIN_EXPECTED):
            pool = [pool[0] + ref[i], pool[1] + cur[i], pool[2] + expected[i]]
        else:
            cells.append((ref[i], cur[i]))
    if pool[2]:
        cells.append((pool[0], pool[1]))
    unseen = cur[~seen].sum()
    if unseen:
        cells.append((0.0, unseen))
    if len(cells) < 2:
        return 1.0
    return _pearson_p(np.array(cells).T)


def _pearson_p(table: np.ndarray) -> float:
    """Pearson's chi-square test of a 2 x k table, no continuity correction: what
    `scipy.stats.chi2_contingency(table, correction=False)` gives, at a tenth of its
    cost (it validates and broadcasts for tables of any shape)."""
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return float(special.chdtrc(table.shape[1] - 1, statistic))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (reject where adjusted <= alpha): controls the
    family-wise error rate across columns without assuming they are independent."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def normed_wasserstein(reference_sorted: np.ndarray, current: np.ndarray,
                       reference_std: float) -> float:
    """Evidently's normed Wasserstein distance (W1 over the reference's std, floored at
    0.001, numpy's population std)."""
    return _w1(reference_sorted, np.sort(current)) / max(reference_std, 0.001)


def _w1(u: np.ndarray, v: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples: the area between their CDFs,
    as `scipy.stats.wasserstein_distance` computes it, without its input checks."""
    both = np.sort(np.concatenate([u, v]), kind="mergesort")
    deltas = np.diff(both)
    u_cdf = np.searchsorted(u, both[:-1], side="right") / len(u)
    v_cdf = np.searchsorted(v, both[:-1], side="right") / len(v)
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Evidently's Jensen-Shannon distance for categories: shares over the union of the
    categories, natural log, no smoothing."""
    return float(distance.jensenshannon(reference / reference.sum(), current / current.sum()))


@dataclass(frozen=True, slots=True)
class CalibratedColumn:
    """What the calibrated verdict needs of one reference column, computed once."""

    name: str
    kind: Kind
    reference_rows: int
    edges: tuple[float, ...] = ()
    """Numerical: interior bin edges at the reference's deciles."""
    counts: tuple[int, ...] = ()
    """Reference counts per bin (numerical) or per category in `categories` order."""
    categories: tuple[object, ...] = ()
    std: float = 0.0

    @classmethod
    def of(cls, name: str, kind: Kind, values: np.ndarray, bins: int) -> CalibratedColumn:
        """Prepared from a column's cleaned values (sorted, when numerical)."""
        if kind == "numerical":
            edges = reference_edges(values, bins)
            return cls(name, kind, len(values), tuple(edges),
                       tuple(bin_counts(edges, values)), (), float(np.std(values)))
        cats, counts = np.unique(values.astype(object), return_counts=True) \
            if _sortable(values) else _unsorted_counts(values)
        return cls(name, kind, len(values), (), tuple(int(c) for c in counts), tuple(cats))

    def category_counts(self, current: dict[object, int]) -> tuple[np.ndarray, np.ndarray]:
        """Reference and window counts aligned on the union of categories."""
        extra = [c for c in current if c not in set(self.categories)]
        ref = np.array([*self.counts, *([0] * len(extra))], dtype=float)
        cur = np.array([current.get(c, 0) for c in (*self.categories, *extra)], dtype=float)
        return ref, cur


def _sortable(values: np.ndarray) -> bool:
    try:
        np.unique(values.astype(object))
    except TypeError:  # mixed types (e.g. str and int) do not sort
        return False
    return True


def _unsorted_counts(values: np.ndarray) -> tuple[list[object], list[int]]:
    counts: dict[object, int] = {}
    for v in values.tolist():
        counts[v] = counts.get(v, 0) + 1
    return list(counts), list(counts.values())


@dataclass(frozen=True, slots=True)
class ColumnEvidence:
    """One column's significance and effect in one window, before correction."""

    column: CalibratedColumn
    current_rows: int
    p_value: float
    effect: float


def numerical_evidence(column: CalibratedColumn, reference_sorted: np.ndarray,
                       current: np.ndarray, effect: float | None = None) -> ColumnEvidence:
    """Raw path, numerical: binned chi-square on the reference's deciles, normed
    Wasserstein as the effect (pass `effect` when Evidently computed it already)."""
    counts = bin_counts(column.edges, current)
    p = homogeneity_p(np.array(column.counts), np.array(counts))
    if effect is None:
        effect = normed_wasserstein(reference_sorted, current, column.std)
    return ColumnEvidence(column, len(current), p, effect)


def categorical_evidence(column: CalibratedColumn,
                         current: dict[object, int]) -> ColumnEvidence:
    """Categorical (raw or profile): chi-square of homogeneity, Jensen-Shannon effect."""
    ref, cur = column.category_counts(current)
    return ColumnEvidence(column, int(cur.sum()), homogeneity_p(ref, cur), js_distance(ref, cur))


def decide(evidence: Sequence[ColumnEvidence], params: CalibratedParams) -> DatasetDrift:
    """Holm across the window's columns, then the effect gate, then the dataset rule
    (at least `min_drifted` columns)."""
    adjusted = holm([e.p_value for e in evidence])
    results = []
    for e, p_adj in zip(evidence, adjusted, strict=True):
        gate = params.min_effect[e.column.kind]
        results.append(ColumnDrift(
            column=e.column.name, kind=e.column.kind, stattest=TESTS[e.column.kind],
            threshold=params.alpha, score=p_adj, drifted=p_adj <= params.alpha and
            e.effect >= gate, reference_rows=e.column.reference_rows,
            current_rows=e.current_rows, p_value=e.p_value, effect=e.effect,
            effect_test=EFFECTS[e.column.kind], effect_threshold=gate))
    drifted = [r.column for r in results if r.drifted]
    share = len(drifted) / len(results) if results else 0.0
    need = min(1.0, params.min_drifted / len(results)) if results else 1.0
    return DatasetDrift(method="calibrated", columns=results, drifted_columns=drifted,
                        share=share, drift_share=need,
                        dataset_drift=len(drifted) >= params.min_drifted)
