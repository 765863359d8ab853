"""Steward's drift judging on hand-checkable data: test choice, thresholds, scores, findings.

The rules checked here are Evidently 0.7's defaults (`_get_default_stattest`): the
reference's non-null row count (<= 1000 or not) and the distinct values of reference
and window together pick the test per column.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from processors.drift import ColumnSpec, DriftParams, Reference, judge
from processors.drift import evidently_adapter as ev

NUM = "numerical"
CAT = "categorical"


def spec(name: str, kind: str = NUM) -> ColumnSpec:
    return ColumnSpec(name=name, kind=kind)


def normal(n: int, loc: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 1.0, n)


def choice(values: list, n: int, seed: int = 0, p: list[float] | None = None) -> np.ndarray:
    return np.random.default_rng(seed).choice(values, n, p=p)


def selected(reference: pd.DataFrame, current: pd.DataFrame, columns: list[ColumnSpec]):
    return {c.column: c.stattest for c in judge(reference, current, columns).drift.columns}


# --- test selection ---------------------------------------------------------------------

@pytest.mark.parametrize(("rows", "expected"), [(1000, "ks"), (1001, "wasserstein")])
def test_numerical_test_depends_on_reference_rows(rows, expected):
    ref = pd.DataFrame({"x": normal(rows)})
    cur = pd.DataFrame({"x": normal(300, seed=1)})
    assert selected(ref, cur, [spec("x")]) == {"x": expected}


@pytest.mark.parametrize(("values", "rows", "expected"), [
    (["a", "b"], 1000, "z"),
    (["a", "b", "c"], 1000, "chisquare"),
    (["a", "b"], 1001, "jensenshannon"),
    (["a", "b", "c", "d"], 1001, "jensenshannon"),
])
def test_categorical_test_depends_on_values_and_rows(values, rows, expected):
    ref = pd.DataFrame({"c": choice(values, rows)})
    cur = pd.DataFrame({"c": choice(values, 200, seed=1)})
    assert selected(ref, cur, [spec("c", CAT)]) == {"c": expected}


def test_non_null_rows_decide_per_column():
    """1,200 rows: 300 NaN in one column -> KS there, Wasserstein beside it, Z for a
    binary column with 250 NaN: three tests from one reference in one window."""
    ref = pd.DataFrame({"x": normal(1200), "y": normal(1200, seed=2),
                        "b": choice(["yes", "no"], 1200).astype(object)})
    ref.loc[:299, "x"] = np.nan
    ref.loc[:249, "b"] = None
    cur = pd.DataFrame({"x": normal(500, seed=3), "y": normal(500, seed=4),
                        "b": choice(["yes", "no"], 500, seed=5)})
    verdict = judge(ref, cur, [spec("x"), spec("y"), spec("b", CAT)])
    got = {c.column: (c.stattest, c.reference_rows) for c in verdict.drift.columns}
    assert got == {"x": ("ks", 900), "y": ("wasserstein", 1200), "b": ("z", 950)}


@pytest.mark.parametrize(("ref_values", "cur_values", "rows", "expected"), [
    ([0.0, 1.0], [0.0, 1.0], 800, "z"),
    ([0.0, 1.0, 2.0], [0.0, 1.0], 800, "chisquare"),
    ([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0], 800, "chisquare"),
    ([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0], 800, "ks"),
    ([0.0, 1.0, 2.0], [0.0, 1.0], 2000, "jensenshannon"),
    ([0.0, 1.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 800, "ks"),  # the window's values count
    ([0.0, 1.0], [7.0, 8.0, 9.0, 10.0], 2000, "wasserstein"),
])
def test_numerical_with_few_values_gets_categorical_tests(ref_values, cur_values, rows,
                                                          expected):
    ref = pd.DataFrame({"x": choice(ref_values, rows)})
    cur = pd.DataFrame({"x": choice(cur_values, 300, seed=1)})
    assert selected(ref, cur, [spec("x")]) == {"x": expected}


def test_binary_categorical_becomes_chisquare_when_window_brings_a_third_value():
    ref = pd.DataFrame({"c": choice(["a", "b"], 500)})
    cur = pd.DataFrame({"c": choice(["a", "b", "new"], 500, seed=1)})
    column = judge(ref, cur, [spec("c", CAT)]).columns["c"]
    assert column.stattest == "chisquare"
    assert column.drifted and column.score == 0.0  # a category the reference lacks: p = 0


@pytest.mark.parametrize("kind", [NUM, CAT])
@pytest.mark.parametrize("rows", [1, 5, 999, 1000, 1001, 5000])
@pytest.mark.parametrize("n_values", [1, 2, 3, 5, 6, 50, 99, 100, 5000])
def test_probe_selection_equals_evidently_on_real_series(kind, rows, n_values):
    """The cached probe asks `_get_default_stattest` what the real series would."""
    from evidently.legacy.calculations.stattests.registry import _get_default_stattest

    rng = np.random.default_rng(rows * 7 + n_values)
    pool = np.arange(n_values, dtype=float)
    reference = pd.Series(rng.choice(pool, rows))
    current = pd.Series(pool)  # all values present: together they have n_values
    real = _get_default_stattest(reference, current, ev.column_type(kind)).name
    assert ev.default_stattest(kind, rows, n_values).name == real


# --- thresholds, scores and comparisons -------------------------------------------------

def test_thresholds_are_the_tests_defaults_and_recorded():
    small = pd.DataFrame({"x": normal(500), "c": choice(["a", "b", "c"], 500)})
    large = pd.DataFrame({"x": normal(5000), "c": choice(["a", "b", "c"], 5000)})
    columns = [spec("x"), spec("c", CAT)]
    got_small = judge(small, small, columns).columns
    got_large = judge(large, large, columns).columns
    assert {c: (r.stattest, r.threshold) for c, r in got_small.items()} == {
        "x": ("ks", 0.05), "c": ("chisquare", 0.05)}
    assert {c: (r.stattest, r.threshold) for c, r in got_large.items()} == {
        "x": ("wasserstein", 0.1), "c": ("jensenshannon", 0.1)}


@pytest.mark.parametrize("rows", [300, 1000, 1001, 4000])
def test_identical_data_is_not_drift(rows):
    frame = pd.DataFrame({"x": normal(rows), "b": choice(["a", "b"], rows),
                          "c": choice(list("abcde"), rows)})
    verdict = judge(frame, frame.sample(frac=1.0, random_state=1),
                    [spec("x"), spec("b", CAT), spec("c", CAT)])
    assert not verdict.dataset_drift
    assert verdict.drift.drifted_columns == []
    for column in verdict.drift.columns:
        assert column.score == pytest.approx(1.0 if column.threshold == 0.05 else 0.0,
                                             abs=1e-9)


def test_shifted_normal_matches_scipy_ks():
    ref, cur = normal(800), normal(600, loc=0.3, seed=1)
    column = judge(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), [spec("x")]).columns["x"]
    assert column.stattest == "ks"
    assert column.score == pytest.approx(stats.ks_2samp(ref, cur).pvalue, rel=1e-9)
    assert column.drifted
    assert (column.reference_rows, column.current_rows) == (800, 600)


def test_shifted_normal_matches_normed_wasserstein():
    ref, cur = normal(3000), normal(2000, loc=0.3, seed=1)
    column = judge(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur}), [spec("x")]).columns["x"]
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert column.stattest == "wasserstein"
    assert column.score == pytest.approx(expected, rel=1e-9)
    assert column.drifted


@pytest.mark.parametrize(("rows", "values", "test", "drifted_at_equal"), [
    (800, None, "ks", True),  # KS: drift when p <= threshold
    (3000, None, "wasserstein", True),  # distances: drift when >= threshold
    (800, ["a", "b", "c"], "chisquare", False),  # chi-square, Z: drift when p < threshold
    (800, ["a", "b"], "z", False),
    (3000, ["a", "b", "c"], "jensenshannon", True),
])
def test_comparison_at_exactly_the_threshold(rows, values, test, drifted_at_equal):
    if values is None:
        ref, cur, kind = normal(rows), normal(rows, loc=0.1, seed=1), NUM
    else:
        ref, cur, kind = choice(values, rows), choice(values, rows, seed=1), CAT
        cur[: rows // 20] = values[0]
    ref_f, cur_f = pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})
    first = judge(ref_f, cur_f, [spec("x", kind)]).columns["x"]
    assert first.stattest == test
    again = judge(ref_f, cur_f, [spec("x", kind)],
                  DriftParams(threshold={"x": first.score})).columns["x"]
    assert again.threshold == first.score
    assert again.drifted is drifted_at_equal


def test_overrides_by_name_are_used_and_recorded():
    ref = pd.DataFrame({"x": normal(500), "c": choice(["a", "b", "c"], 500)})
    cur = pd.DataFrame({"x": normal(500, loc=0.2, seed=1), "c": choice(["a", "b", "c"], 500)})
    params = DriftParams(stattest={"x": "wasserstein", "c": "jensenshannon"},
                         threshold={"x": 0.5})
    got = judge(ref, cur, [spec("x"), spec("c", CAT)], params).columns
    assert (got["x"].stattest, got["x"].threshold) == ("wasserstein", 0.5)
    assert (got["c"].stattest, got["c"].threshold) == ("jensenshannon", 0.1)


@pytest.mark.parametrize(("stattest", "kind"), [("no-such-test", NUM), ("z", NUM),
                                                ("ks", CAT)])
def test_override_unfit_for_the_kind_is_a_configuration_error(stattest, kind):
    with pytest.raises(ValueError):
        Reference(pd.DataFrame({"x": [1.0, 2.0]}), [spec("x", kind)],
                  DriftParams(stattest={"x": stattest}))


def test_params_for_undeclared_columns_and_undeclared_prediction_raise():
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="undeclared"):
        Reference(frame, [spec("x")], DriftParams(threshold={"y": 0.2}))
    with pytest.raises(ValueError, match="prediction"):
        Reference(frame, [spec("x")], prediction="score")


# --- dataset drift and prediction -------------------------------------------------------

def test_dataset_drift_at_exactly_the_share():
    ref = pd.DataFrame({k: normal(500, seed=i) for i, k in enumerate("abcd")})
    cur = ref.copy()
    cur["a"] += 1.0
    cur["b"] += 1.0
    verdict = judge(ref, cur, [spec(k) for k in "abcd"])
    assert verdict.drift.drifted_columns == ["a", "b"]
    assert verdict.share == 0.5 and verdict.drift.drift_share == 0.5
    assert verdict.dataset_drift  # >= drift_share, as in the preset
    assert not judge(ref, cur, [spec(k) for k in "abcd"],
                     DriftParams(drift_share=0.75)).dataset_drift


def test_prediction_is_judged_as_a_column_and_reported_apart():
    ref = pd.DataFrame({"x": normal(500), "score": normal(500, seed=1)})
    cur = pd.DataFrame({"x": normal(500, seed=2), "score": normal(500, loc=1.0, seed=3)})
    verdict = Reference(ref, [spec("x"), spec("score")], prediction="score").judge(cur)
    assert verdict.prediction is not None
    assert verdict.prediction == verdict.columns["score"]
    assert verdict.prediction.stattest == "ks" and verdict.prediction.drifted
    assert verdict.share == 0.5  # it counts towards the share, as in the preset


def test_categorical_prediction():
    ref = pd.DataFrame({"label": choice(["cat", "dog"], 400)})
    cur = pd.DataFrame({"label": choice(["cat", "dog"], 400, seed=1, p=[0.9, 0.1])})
    verdict = Reference(ref, [spec("label", CAT)], prediction="label").judge(cur)
    assert verdict.prediction is not None and verdict.prediction.stattest == "z"
    assert verdict.prediction.drifted


# --- NaN, inf, constants ----------------------------------------------------------------

def test_nans_and_infinities_are_dropped_before_the_test():
    ref = pd.DataFrame({"x": normal(600)})
    cur = pd.DataFrame({"x": normal(600, seed=1)})
    cur.loc[:99, "x"] = np.nan
    cur.loc[100:109, "x"] = np.inf
    verdict = judge(ref, cur, [spec("x")])
    column = verdict.columns["x"]
    assert column.current_rows == 490
    assert column.score == pytest.approx(
        stats.ks_2samp(ref["x"], cur["x"].to_numpy()[110:]).pvalue, rel=1e-9)
    assert [f.code for f in verdict.findings] == ["infinite_values"]


@pytest.mark.parametrize("rows", [500, 3000])
def test_constant_columns(rows):
    ref = pd.DataFrame({"k": np.full(rows, 3.0)})
    same = judge(ref, ref.copy(), [spec("k")]).columns["k"]
    moved = judge(ref, pd.DataFrame({"k": np.full(rows, 4.0)}), [spec("k")]).columns["k"]
    assert not same.drifted and moved.drifted
    assert same.stattest == moved.stattest == ("z" if rows <= 1000 else "jensenshannon")


# --- data-quality findings: never an exception ------------------------------------------

def test_missing_new_and_empty_columns_are_findings():
    ref = pd.DataFrame({"x": normal(300), "gone": normal(300, seed=1),
                        "empty_ref": np.full(300, np.nan), "empty_cur": normal(300, seed=2)})
    cur = pd.DataFrame({"x": normal(300, seed=3), "late": normal(300, seed=4),
                        "brand_new": normal(300, seed=5), "empty_ref": normal(300, seed=6),
                        "empty_cur": np.full(300, np.nan)})
    columns = [spec(c) for c in ("x", "gone", "late", "empty_ref", "empty_cur")]
    verdict = judge(ref, cur, columns)
    assert list(verdict.columns) == ["x"]
    assert {(f.code, f.column) for f in verdict.findings} == {
        ("missing_in_current", "gone"),
        ("missing_in_reference", "late"),
        ("unknown_in_current", "brand_new"),
        ("empty_in_reference", "empty_ref"),
        ("empty_in_current", "empty_cur"),
    }
    assert verdict.share == 0.0 and not verdict.dataset_drift
    assert all(isinstance(t, str) for t in verdict.finding_texts())


def test_non_numeric_values_in_a_numerical_column_are_a_finding():
    ref = pd.DataFrame({"x": normal(200), "s": ["a"] * 200})
    cur = pd.DataFrame({"x": ["1.0"] * 200, "s": ["a"] * 200})
    verdict = judge(ref, cur, [spec("x"), spec("s")])
    assert {(f.code, f.column) for f in verdict.findings} == {
        ("not_numeric", "x"), ("not_numeric", "s"), ("no_columns", None)}


def test_nothing_judgeable_is_no_dataset_drift():
    verdict = judge(pd.DataFrame({"x": [np.nan] * 5}), pd.DataFrame({"y": [1.0]}), [spec("x")])
    assert verdict.drift.columns == [] and not verdict.dataset_drift
    assert [f.code for f in verdict.findings] == ["empty_in_reference", "unknown_in_current",
                                                  "no_columns"]


def test_empty_window_is_findings_only():
    ref = pd.DataFrame({"x": normal(100), "c": choice(["a", "b"], 100)})
    verdict = judge(ref, ref.iloc[:0], [spec("x"), spec("c", CAT)])
    assert {f.code for f in verdict.findings} == {"empty_in_current", "no_columns"}


def test_verdict_is_json_ready():
    ref = pd.DataFrame({"x": normal(300), "c": choice(["a", "b", "c"], 300)})
    cur = pd.DataFrame({"x": normal(300, seed=1), "c": choice(["a", "d"], 300, seed=1)})
    verdict = judge(ref, cur, [spec("x"), spec("c", CAT)])
    body = json.loads(verdict.model_dump_json())
    assert body["drift"]["columns"][1]["stattest"] == "chisquare"


def test_reference_is_reused_across_windows():
    reference = Reference(pd.DataFrame({"x": normal(1000)}), [spec("x")])
    shifts = [0.0, 0.5, 0.0, 1.0]
    flags = [reference.judge(pd.DataFrame({"x": normal(400, loc=s, seed=i)})).dataset_drift
             for i, s in enumerate(shifts)]
    assert flags == [False, True, False, True]
