"""Feature profiles: edges, bins, moments and merges worked out by hand; sketches and
reservoirs within their guarantees; hostile profiles rejected with reasons."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from steward import topics as T
from steward.codec import decode_batch, encode_batch, validation_reason
from steward.errors import InvalidInput
from steward.profiles import (
    ProfileBuilder,
    ProfileSpec,
    bin_counts,
    categorical_values,
    kll_of,
    merge,
    reference_edges,
    spec_from_reference,
)
from steward.schema import FeatureProfile

W0 = datetime(2026, 1, 1, tzinfo=UTC)
W1 = W0 + timedelta(minutes=5)
COLUMNS = {"amount": "numerical", "channel": "categorical", "score": "numerical"}


def spec(edges=(2.0, 3.0), reservoir=8, **kw) -> ProfileSpec:
    return ProfileSpec(model="fraud", version="1.4.0", prediction="score",
                       columns={"amount": {"kind": "numerical", "edges": list(edges)},
                                "channel": {"kind": "categorical"},
                                "score": {"kind": "numerical", "edges": [0.5]}},
                       reservoir=reservoir, **kw)


def build(rows, s=None, seed=0, site="berlin", start=W0, **kw) -> FeatureProfile:
    b = ProfileBuilder(s or spec(), seed=seed, **kw)
    for features, prediction in rows:
        b.add(features, prediction)
    return b.build("fraud", "1.4.0", site, "node-1", start, start + timedelta(minutes=5))


def test_reference_edges_are_deduplicated_quantiles_of_finite_values():
    values = np.array([*range(1, 11), np.nan, np.inf, -np.inf])
    assert reference_edges(values, bins=4) == [3.25, 5.5, 7.75]  # 1 + q * 9
    assert reference_edges(np.array([1, 1, 1, 1, 2]), bins=4) == [1.0]
    assert reference_edges(np.array([np.nan]), bins=10) == []
    assert reference_edges(np.arange(10.0), bins=1) == []


def test_bin_counts_put_an_edge_value_in_the_bin_above():
    assert bin_counts([3.25, 5.5, 7.75], np.arange(1, 11)) == [3, 2, 2, 3]
    assert bin_counts([2.0], np.array([1.0, 2.0, 3.0, np.nan, np.inf])) == [1, 2]
    assert bin_counts([], np.array([1.0, 2.0])) == [2]


def test_spec_from_reference_cleans_values_and_ids_its_content():
    rows = [{"amount": float(i), "channel": "pos", "score": None} for i in range(1, 11)]
    rows += [{"amount": None}, {"amount": float("nan")}, {"amount": float("inf")},
             {"amount": "n/a"}]
    s = spec_from_reference("fraud", "1.4.0", COLUMNS, "score", rows, bins=4)
    assert s.columns["amount"].edges == [3.25, 5.5, 7.75]
    assert s.columns["score"].edges == []
    assert s.columns["channel"].kind == "categorical"
    assert (s.kll_k, s.reservoir) == (1024, 256)
    back = ProfileSpec.model_validate_json(s.model_dump_json())
    assert back.spec_id == s.spec_id and len(s.spec_id) == 64
    assert spec(reservoir=1).spec_id == spec(reservoir=2).spec_id  # not part of the id
    assert spec(edges=(2.0,)).spec_id != spec().spec_id
    with pytest.raises(ValidationError, match="does not match"):
        ProfileSpec.model_validate({**s.model_dump(), "spec_id": "0" * 64})


def test_numerical_column_by_hand():
    rows = [({"amount": v}, 0.1) for v in (1, 2.0, 3.5, None, float("nan"), float("inf"),
                                           "x", True)]
    rows.append(({}, 0.9))  # missing: null
    col = build(rows).columns["amount"]
    assert (col.count, col.nulls, col.infinite, col.invalid) == (3, 3, 1, 2)
    assert col.bins == [1, 1, 1]  # 1 < 2.0 <= 2 < 3.0 <= 3.5
    assert (col.sum, col.sum_sq, col.min, col.max) == (6.5, 17.25, 1.0, 3.5)
    assert col.mean == pytest.approx(6.5 / 3)
    score = build(rows).columns["score"]
    assert (score.count, score.bins, score.sum) == (9, [8, 1], pytest.approx(1.7))


def test_categorical_column_keeps_json_types_and_orders_by_count():
    values = ["a", "b", "a", 1, True, 1.0, None, {"nested": 1}, "x" * 2000]
    p = build([({"channel": v}, 0.1) for v in values])
    col = FeatureProfile.model_validate_json(p.model_dump_json()).columns["channel"]
    assert col.values == [("a", 2), ("b", 1), (1, 1), (1.0, 1), (True, 1)]
    got, counts = categorical_values(col)
    assert [type(v) for v in got] == [str, str, int, float, bool]
    assert counts == [2, 1, 1, 1, 1]
    assert (col.count, col.nulls, col.invalid, col.other) == (6, 1, 2, 0)


def test_categories_beyond_the_cap_are_counted_in_other():
    p = build([({"channel": v}, 0.1) for v in "abccd"], max_categories=2)
    col = p.columns["channel"]
    assert col.values == [("a", 1), ("b", 1)]
    assert (col.count, col.other) == (5, 3)


def test_kll_quantiles_are_exact_up_to_k_values():
    values = random.Random(7).sample(range(100_000), 1000)
    p = build([({"amount": v / 7}, 0.1) for v in values])
    sketch = kll_of(p.columns["amount"])
    assert sketch.k == 1024 and sketch.n == 1000 and not sketch.is_estimation_mode()
    exact = sorted(v / 7 for v in values)
    ranks = [(i - 0.5) / 1000 for i in range(1, 1001)]  # between two items: no rounding
    assert sketch.get_quantiles(ranks) == exact
    assert sketch.get_cdf([exact[249]], inclusive=True)[0] == 0.25


def test_reservoir_holds_a_bounded_seeded_sample_of_whole_rows():
    rows = [({"amount": float(i), "channel": "pos"}, i / 100) for i in range(100)]
    p = build(rows, seed=3)
    assert (len(p.reservoir), p.reservoir_of, p.reservoir_size, p.rows) == (8, 100, 8, 100)
    assert all(r["score"] == r["amount"] / 100 and r["channel"] == "pos" for r in p.reservoir)
    assert build(rows, seed=3) == p and build(rows, seed=3).id == p.id
    assert build(rows, seed=4).reservoir != p.reservoir
    small = build(rows[:3])
    assert (len(small.reservoir), small.reservoir_of) == (3, 3)


def test_merge_adds_counts_exactly_and_merges_sketches():
    rows_a = [({"amount": v, "channel": c}, 0.2)
              for v, c in ((1.0, "a"), (2.5, "b"), (None, "a"))]
    rows_b = [({"amount": v, "channel": c}, 0.7) for v, c in ((4.0, "b"), (0.5, "b"))]
    m = merge(build(rows_a), build(rows_b))
    amount, channel = m.columns["amount"], m.columns["channel"]
    assert (m.rows, amount.count, amount.nulls, amount.bins) == (5, 4, 1, [2, 1, 1])
    assert (amount.sum, amount.sum_sq, amount.min, amount.max) == (8.0, 23.5, 0.5, 4.0)
    assert kll_of(amount).get_quantiles([0.125, 0.375, 0.625, 0.875]) == [0.5, 1.0, 2.5, 4.0]
    assert channel.values == [("b", 3), ("a", 2)]
    assert m.columns["score"].bins == [3, 2]
    assert (len(m.reservoir), m.reservoir_of, m.node) == (5, 5, "node-1")
    assert merge(build(rows_a), build(rows_b)).id == m.id  # deterministic


def test_merge_is_associative_in_every_count():
    rng = random.Random(1)
    parts = [build([({"amount": rng.uniform(0, 5), "channel": rng.choice("abcdefg")},
                     rng.random()) for _ in range(n)], seed=n) for n in (40, 7, 25)]
    left = merge(merge(parts[0], parts[1]), parts[2])
    right = merge(parts[0], merge(parts[1], parts[2]))
    for name in ("amount", "score"):
        lc, rc = left.columns[name], right.columns[name]
        assert (lc.count, lc.nulls, lc.bins, lc.min, lc.max) == \
            (rc.count, rc.nulls, rc.bins, rc.min, rc.max)
        assert lc.sum == pytest.approx(rc.sum) and kll_of(lc).n == kll_of(rc).n == 72
    assert sorted(left.columns["channel"].values) == sorted(right.columns["channel"].values)
    assert (left.rows, len(left.reservoir), left.reservoir_of) == \
        (right.rows, len(right.reservoir), right.reservoir_of) == (72, 8, 72)


def test_merged_reservoir_draws_from_each_side_by_the_rows_it_stands_for():
    s = spec(reservoir=10)
    a = build([({"channel": "a"}, 0.1)] * 900, s)
    b = build([({"channel": "b"}, 0.1)] * 100, s)
    from_a = [sum(r["channel"] == "a" for r in merge(a, b, seed=i).reservoir)
              for i in range(300)]
    assert 8.6 < sum(from_a) / len(from_a) < 9.4  # expected 9 of 10


@pytest.mark.parametrize(("change", "reason"), [
    ({"site": "hamburg"}, "different site"),
    ({"start": W1}, "different windows"),
    ({"s": spec(edges=(1.0,))}, "different spec_id"),
])
def test_merge_refuses_profiles_of_different_windows_or_specs(change, reason):
    with pytest.raises(InvalidInput, match=reason):
        merge(build([({}, 0.1)]), build([({}, 0.1)], **change))


def good_doc() -> dict:
    return build([({"amount": 1.0, "channel": "a"}, 0.3)]).model_dump(mode="json",
                                                                    by_alias=True)


def reason_of(doc: dict) -> str:
    with pytest.raises(ValidationError) as info:
        FeatureProfile.model_validate(doc)
    return validation_reason(info.value)


def with_column(name: str, **change) -> dict:
    doc = good_doc()
    doc["columns"][name].update(change)
    return doc


@pytest.mark.parametrize(("doc", "reason"), [
    (with_column("amount", kind="text"), "does not match any of the expected tags"),
    (with_column("amount", nulls=-1), "greater than or equal to 0"),
    (with_column("amount", count=2), "bin counts add up to 1, not count 2"),
    (with_column("amount", bins=[0] * 2000), "at most 1025 items"),
    (with_column("amount", kll="bm90IGEgc2tldGNo"), "not a serialized KLL"),
    (with_column("amount", kll="***"), "not base64"),
    (with_column("channel", values=[["a", 1]] * 10_001), "at most 10000 items"),
    (with_column("channel", values=[["a", 1], ["a", 0]]), "greater than or equal to 1"),
    (with_column("channel", nulls=3), "accounts for 4 rows, the profile for 1"),
    ({**good_doc(), "reservoir": [{"a": 1}] * 5000}, "at most 4096 items"),
    ({**good_doc(), "reservoir": []}, "reservoir holds 0 rows"),
    ({**good_doc(), "spec_id": "../etc"}, "spec_id"),
    ({**good_doc(), "rows": -1}, "greater than or equal to 0"),
    ({**good_doc(), "site": "a/b"}, "site"),
    ({**good_doc(), "surprise": 1}, "Extra inputs are not permitted"),
])
def test_hostile_profiles_are_rejected_with_a_reason(doc, reason):
    assert reason in reason_of(doc)


def test_a_bad_profile_on_the_topic_decodes_to_a_rejection_with_its_reason():
    good = build([({"amount": 1.0}, 0.3)])
    value = encode_batch([good])
    doc = json.loads(value)
    doc["records"].append({**doc["records"][0], "rows": 2})
    decoded = decode_batch(json.dumps(doc).encode(), T.PROFILES.record)
    assert decoded.items == [good]
    assert len(decoded.rejected) == 1 and decoded.rejected[0].index == 1
    assert "accounts for 1 rows, the profile for 2" in decoded.rejected[0].reason
