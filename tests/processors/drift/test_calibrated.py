"""The calibrated verdict's pieces, against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from processors.drift import calibrated as cal
from processors.drift.models import CalibratedParams


def chi2_by_hand(table: list[list[float]]) -> float:
    """Pearson's statistic of a 2 x k table, sum (O - E)^2 / E, written out."""
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    n = sum(rows)
    return sum((table[i][j] - rows[i] * cols[j] / n) ** 2 / (rows[i] * cols[j] / n)
               for i in range(2) for j in range(len(cols)))


def test_homogeneity_of_a_two_by_two_table():
    # E = 40, 60 in both rows: (10^2/40 + 10^2/60) * 2 = 8.3333, one degree of freedom
    p = cal.homogeneity_p(np.array([30, 70]), np.array([50, 50]))
    assert chi2_by_hand([[30, 70], [50, 50]]) == pytest.approx(25 / 3)
    assert p == pytest.approx(stats.chi2.sf(25 / 3, 1))
    assert p == pytest.approx(0.003892, abs=1e-6)


def test_sparse_cells_are_pooled_smallest_first_by_the_reference():
    # expected in the 21-row window from the 203-row reference's shares: 10.34, 10.34,
    # 0.21, 0.10; the 1 and the 2 pool (0.31 expected), still short, so the first 100 joins
    # the pool and the second stands: [[100, 103], [10, 11]]
    p = cal.homogeneity_p(np.array([100, 100, 2, 1]), np.array([10, 10, 1, 0]))
    assert p == pytest.approx(stats.chi2.sf(chi2_by_hand([[100, 103], [10, 11]]), 1))


def test_pooling_ignores_the_windows_counts():
    # a window with nothing in a cell the reference expects 5 in keeps that cell: pooling
    # it would drop a degree of freedom and keep the statistic
    p = cal.homogeneity_p(np.array([500] * 10), np.array([0, 10, *[5] * 8]))
    table = [[500] * 10, [0, 10, *[5] * 8]]
    assert p == pytest.approx(stats.chi2.sf(chi2_by_hand(table), 9))


def test_categories_the_reference_never_saw_are_a_cell_of_their_own():
    p = cal.homogeneity_p(np.array([100, 100, 0, 0]), np.array([10, 10, 20, 10]))
    assert p == pytest.approx(stats.chi2.sf(chi2_by_hand([[100, 100, 0], [10, 10, 30]]), 2))


def test_one_cell_left_or_an_empty_side_is_no_evidence():
    assert cal.homogeneity_p(np.array([5, 1]), np.array([1, 0])) == 1.0
    assert cal.homogeneity_p(np.array([5, 5]), np.array([0, 0])) == 1.0


def test_holm_step_down():
    # sorted .005 .01 .03 .04 -> 4*.005, 3*.01, 2*.03, max(.06, 1*.04)
    assert cal.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert cal.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert cal.holm([]) == []


def test_distances_are_evidentlys():
    # W1 of a shift by 1 over the population std of 0..3, sqrt(1.25)
    ref = np.array([0.0, 1.0, 2.0, 3.0])
    assert cal.normed_wasserstein(ref, ref + 1, float(np.std(ref))) == pytest.approx(
        1 / math.sqrt(1.25))
    # (.5,.5) vs (1,0): m = (.75,.25); KL terms .143841 and .287682; sqrt of their mean
    assert cal.js_distance(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(
        math.sqrt((0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2) + math.log(4 / 3)) / 2))


def test_reference_columns_are_prepared_once():
    values = np.arange(100, dtype=float)
    num = cal.CalibratedColumn.of("x", "numerical", values, bins=4)
    assert num.edges == (24.75, 49.5, 74.25) and num.counts == (25, 25, 25, 25)
    assert num.std == pytest.approx(float(np.std(values)))
    cat = cal.CalibratedColumn.of("c", "categorical", np.array(["b", "a", "b"], dtype=object),
                                  bins=4)
    assert (cat.categories, cat.counts) == (("a", "b"), (1, 2))
    ref, cur = cat.category_counts({"b": 3, "new": 2})
    assert ref.tolist() == [1, 2, 0] and cur.tolist() == [0, 3, 2]


def test_decide_needs_significance_and_effect():
    params = CalibratedParams(alpha=0.01)
    col = cal.CalibratedColumn("x", "numerical", 1000)
    cat = cal.CalibratedColumn("c", "categorical", 1000)
    evidence = [cal.ColumnEvidence(col, 50, 0.001, 0.3),   # Holm 0.002: drifts
                cal.ColumnEvidence(cat, 50, 0.004, 0.05),  # Holm 0.008, too small an effect
                cal.ColumnEvidence(col, 50, 0.2, 0.5)]     # large effect, noise
    verdict = cal.decide(evidence, params)
    assert [c.score for c in verdict.columns] == pytest.approx([0.003, 0.008, 0.2])
    assert [c.drifted for c in verdict.columns] == [True, False, False]
    assert verdict.drifted_columns == ["x"] and verdict.dataset_drift
    assert verdict.method == "calibrated" and verdict.share == pytest.approx(1 / 3)
    first = verdict.columns[0]
    assert (first.stattest, first.threshold, first.p_value) == ("binned_chi2", 0.01, 0.001)
    assert (first.effect_test, first.effect_threshold) == ("wasserstein", 0.1)
    assert not cal.decide(evidence, CalibratedParams(min_drifted=2)).dataset_drift


def test_params_need_an_effect_for_both_kinds():
    with pytest.raises(ValueError, match="categorical"):
        CalibratedParams(min_effect={"numerical": 0.1})


def test_the_fast_paths_equal_scipys():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        table = rng.integers(5, 500, size=(2, k))
        assert cal._pearson_p(table.astype(float)) == pytest.approx(
            stats.chi2_contingency(table, correction=False)[1], rel=1e-9, abs=1e-300)
        u, v = np.sort(rng.normal(size=int(rng.integers(1, 300)))), rng.normal(size=50)
        assert cal.normed_wasserstein(u, v, 1.0) == pytest.approx(
            stats.wasserstein_distance(u, v), rel=1e-12)
