"""Per-window feature profiles: the spec the edge builds them to, the builder, the merge.

Shared by the edge agent (which builds profiles instead of sending raw features on a
thin link) and the drift judge (which reads them). Pure: no I/O, no Kafka.

A `ProfileSpec` is derived from a model version's reference: numerical columns get
fixed bin edges from the reference's quantiles, so a window's bin counts compare with
the reference's directly; categorical columns are counted exactly. Profiles of the
same spec and window merge exactly (counts, moments, frequent items) or as the
sketches allow (KLL quantiles, the reservoir sample), so profiles from several nodes
or from late records of a window combine into one.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import math
import random
from datetime import datetime
from typing import Any

from datasketches import kll_doubles_sketch

from steward.errors import InvalidInput
from steward.profile_spec import (
    CategoricalColumnSpec,
    ColumnSpecP,
    Kind,
    NumericalColumnSpec,
    ProfileSpec,
    _number,
    bin_counts,
    reference_edges,
    spec_from_reference,
)
from steward.schema.profile import (
    MAX_CATEGORY_CHARS,
    MAX_UNKNOWN,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
)
from steward.schema.records import Tier

__all__ = [
    "DEFAULT_MAX_CATEGORIES",
    "CategoricalColumnSpec",
    "ColumnSpecP",
    "FeatureProfile",
    "Kind",
    "NumericalColumnSpec",
    "ProfileBuilder",
    "ProfileSpec",
    "bin_counts",
    "categorical_values",
    "encode_kll",
    "kll_of",
    "merge",
    "reference_edges",
    "spec_from_reference",
]

DEFAULT_MAX_CATEGORIES = 1000


def encode_kll(sketch: kll_doubles_sketch) -> str:
    return base64.b64encode(sketch.serialize()).decode()


def kll_of(column: NumericProfile) -> kll_doubles_sketch:
    """The column's KLL sketch, ready for quantiles, CDFs or a Wasserstein estimate."""
    return kll_doubles_sketch.deserialize(base64.b64decode(column.kll))


def categorical_values(column: CategoricalProfile) -> tuple[list[Any], list[int]]:
    """(values, counts) of a categorical column, most frequent first."""
    return [v for v, _ in column.values], [c for _, c in column.values]


def _add(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    total = a + b
    return total if math.isfinite(total) else None


class _Numeric:
    def __init__(self, edges: list[float], k: int) -> None:
        self.edges = edges
        self.bins = [0] * (len(edges) + 1)
        self.sketch = kll_doubles_sketch(k)
        self.count = self.nulls = self.infinite = self.invalid = 0
        self.sum: float | None = 0.0
        self.sum_sq: float | None = 0.0
        self.min, self.max = math.inf, -math.inf

    def add(self, value: Any) -> None:
        if value is None:
            self.nulls += 1
            return
        x = _number(value)
        if x is None:
            self.invalid += 1
        elif math.isnan(x):
            self.nulls += 1
        elif math.isinf(x):
            self.infinite += 1
        else:
            self.count += 1
            self.bins[bisect.bisect_right(self.edges, x)] += 1
            self.sketch.update(x)
            self.sum = _add(self.sum, x)
            self.sum_sq = _add(self.sum_sq, x * x) if abs(x) < 1e154 else None
            self.min, self.max = min(self.min, x), max(self.max, x)

    def build(self) -> NumericProfile:
        empty = self.count == 0
        return NumericProfile(
            count=self.count, nulls=self.nulls, infinite=self.infinite, invalid=self.invalid,
            edges=self.edges, bins=self.bins, kll=encode_kll(self.sketch),
            sum=self.sum, sum_sq=self.sum_sq,
            min=None if empty else self.min, max=None if empty else self.max)


def _category_key(value: Any) -> tuple[str, Any] | None:
    """(JSON type, value) of a valid category, or None (nested, non-finite, overlong)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value) if math.isfinite(value) else None
    if isinstance(value, str):
        return ("str", value) if len(value) <= MAX_CATEGORY_CHARS else None
    return None


class _Categorical:
    def __init__(self, max_categories: int) -> None:
        self.max_categories = max_categories
        self.counts: dict[tuple[str, Any], int] = {}
        self.count = self.nulls = self.invalid = self.other = 0

    def add(self, value: Any) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.nulls += 1
            return
        key = _category_key(value)
        if key is None:
            self.invalid += 1
            return
        self.count += 1
        if key in self.counts:
            self.counts[key] += 1
        elif len(self.counts) < self.max_categories:
            self.counts[key] = 1
        else:
            self.other += 1

    def build(self) -> CategoricalProfile:
        return CategoricalProfile(count=self.count, nulls=self.nulls, invalid=self.invalid,
                                  values=_sorted_values(self.counts), other=self.other)


def _sorted_values(counts: dict[tuple[str, Any], int]) -> list[tuple[Any, int]]:
    return [(key[1], n) for key, n in sorted(counts.items(),
                                             key=lambda kv: (-kv[1], repr(kv[0][1])))]


def _cell(value: Any) -> Any:
    """A reservoir cell as JSON can carry it: non-finite floats and nested values -> None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if value is None or isinstance(value, str | int | float | bool) else None


class ProfileBuilder:
    """Accumulates one window's rows into a `FeatureProfile` of `spec`. `seed` fixes
    the reservoir's draws, so the same rows in the same order give the same profile
    (and the same id)."""

    def __init__(self, spec: ProfileSpec, seed: int = 0,
                 max_categories: int = DEFAULT_MAX_CATEGORIES) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self._columns: dict[str, _Numeric | _Categorical] = {
            name: _Numeric(c.edges, spec.kll_k) if isinstance(c, NumericalColumnSpec)
            else _Categorical(max_categories) for name, c in spec.columns.items()}
        self._latency = _Numeric([], spec.kll_k)
        self._timed = False
        self.rows = self.errors = 0
        self.weight = 0.0
        self.reservoir: list[dict[str, Any]] = []
        self._unknown: set[str] = set()

    def add(self, features: dict[str, Any], prediction: Any = None, *,
            latency_ms: float | None = None, error: bool = False,
            sample_rate: float = 1.0) -> None:
        """One row: its features, and the prediction under the spec's prediction column."""
        row = dict(features)
        if self.spec.prediction is not None:
            row[self.spec.prediction] = prediction
        for name, column in self._columns.items():
            column.add(row.get(name))
        if len(self._unknown) < MAX_UNKNOWN:
            self._unknown.update(n for n in row if n not in self._columns)
        self._timed = self._timed or latency_ms is not None
        self._latency.add(latency_ms)
        self.rows += 1
        self.errors += bool(error)
        self.weight += 1.0 / sample_rate
        self._sample({k: _cell(v) for k, v in row.items()})

    def _sample(self, row: dict[str, Any]) -> None:
        """Algorithm R: after t rows, each is in the reservoir with probability size/t."""
        if len(self.reservoir) < self.spec.reservoir:
            self.reservoir.append(row)
            return
        j = self._rng.randrange(self.rows)
        if j < self.spec.reservoir:
            self.reservoir[j] = row

    def build(self, model: str, version: str, site: str, node: str | None,
              window_start: datetime, window_end: datetime, tier: Tier = "edge"
              ) -> FeatureProfile:
        """The profile of every row added so far."""
        return FeatureProfile.model_validate({
            "model": model, "version": version, "site": site, "tier": tier, "node": node,
            "window": {"start": window_start, "end": window_end},
            "spec_id": self.spec.spec_id, "rows": self.rows, "errors": self.errors,
            "weight": self.weight,
            "columns": {n: c.build().model_dump() for n, c in self._columns.items()},
            "latency_ms": self._latency.build().model_dump() if self._timed else None,
            "reservoir": list(self.reservoir), "reservoir_of": self.rows,
            "reservoir_size": self.spec.reservoir,
            "unknown_columns": sorted(self._unknown)[:MAX_UNKNOWN],
        })


def _merge_numeric(a: NumericProfile, b: NumericProfile, where: str) -> NumericProfile:
    if a.edges != b.edges:
        raise InvalidInput(f"{where}: bin edges differ")
    sketch = kll_of(a)
    sketch.merge(kll_of(b))
    mins = [m for m in (a.min, b.min) if m is not None]
    maxs = [m for m in (a.max, b.max) if m is not None]
    return NumericProfile(
        count=a.count + b.count, nulls=a.nulls + b.nulls, infinite=a.infinite + b.infinite,
        invalid=a.invalid + b.invalid, edges=a.edges,
        bins=[x + y for x, y in zip(a.bins, b.bins, strict=True)], kll=encode_kll(sketch),
        sum=_add(a.sum, b.sum), sum_sq=_add(a.sum_sq, b.sum_sq),
        min=min(mins) if mins else None, max=max(maxs) if maxs else None)


def _merge_categorical(a: CategoricalProfile, b: CategoricalProfile,
                       max_categories: int) -> CategoricalProfile:
    counts: dict[tuple[str, Any], int] = {}
    for value, n in (*a.values, *b.values):
        key = _category_key(value)
        assert key is not None  # the schema admits valid categories only
        counts[key] = counts.get(key, 0) + n
    ranked = _sorted_values(counts)
    kept, folded = ranked[:max_categories], ranked[max_categories:]
    return CategoricalProfile(count=a.count + b.count, nulls=a.nulls + b.nulls,
                              invalid=a.invalid + b.invalid, values=kept,
                              other=a.other + b.other + sum(n for _, n in folded))


def _merge_reservoirs(a: FeatureProfile, b: FeatureProfile, size: int,
                      rng: random.Random) -> list[dict[str, Any]]:
    """A uniform sample of min(size, rows) of the union: how many come from each side is
    drawn hypergeometrically by the rows each stands for, then taken uniformly from it."""
    left_a, left_b = a.reservoir_of, b.reservoir_of
    take = min(size, left_a + left_b)
    from_a = 0
    for _ in range(take):
        if rng.randrange(left_a + left_b) < left_a:
            from_a, left_a = from_a + 1, left_a - 1
        else:
            left_b -= 1
    return rng.sample(list(a.reservoir), from_a) + rng.sample(list(b.reservoir), take - from_a)


def merge(a: FeatureProfile, b: FeatureProfile, *,
          max_categories: int = DEFAULT_MAX_CATEGORIES, seed: int | None = None
          ) -> FeatureProfile:
    """One profile of both windows' rows. Both must profile the same model, version, site
    and window to the same spec (`InvalidInput` otherwise). Counts, moments and frequent
    items add exactly (distinct values beyond `max_categories` fold into `other`); KLL
    sketches merge; the reservoir stays a uniform sample of the union. The result is
    deterministic: `seed` defaults to one derived from both ids."""
    for field in ("model", "version", "site", "spec_id"):
        if getattr(a, field) != getattr(b, field):
            raise InvalidInput(f"cannot merge profiles of different {field}: "
                               f"{getattr(a, field)!r} and {getattr(b, field)!r}")
    if (a.window.start, a.window.end) != (b.window.start, b.window.end):
        raise InvalidInput(f"cannot merge profiles of different windows: {a.window.start}"
                           f"..{a.window.end} and {b.window.start}..{b.window.end}")
    if a.columns.keys() != b.columns.keys():
        raise InvalidInput("cannot merge profiles with different columns")
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    for name, x in a.columns.items():
        y = b.columns[name]
        if isinstance(x, NumericProfile) and isinstance(y, NumericProfile):
            columns[name] = _merge_numeric(x, y, f"column {name!r}")
        elif isinstance(x, CategoricalProfile) and isinstance(y, CategoricalProfile):
            columns[name] = _merge_categorical(x, y, max_categories)
        else:
            raise InvalidInput(f"column {name!r} is {x.kind} in one profile, {y.kind} in "
                               "the other")
    if seed is None:
        seed = int.from_bytes(hashlib.sha256(f"{a.id}|{b.id}".encode()).digest()[:8], "big")
    size = max(a.reservoir_size, b.reservoir_size)
    latency = None
    if a.latency_ms is not None or b.latency_ms is not None:
        latency = _merge_numeric(a.latency_ms or _untimed(a.rows),
                                 b.latency_ms or _untimed(b.rows), "latency_ms")
    return FeatureProfile.model_validate({
        "model": a.model, "version": a.version, "site": a.site,
        "tier": a.tier if a.tier == b.tier else "edge",
        "node": a.node if a.node == b.node else None,
        "window": a.window.model_dump(), "spec_id": a.spec_id, "rows": a.rows + b.rows,
        "errors": a.errors + b.errors, "weight": a.weight + b.weight,
        "columns": {n: c.model_dump() for n, c in columns.items()},
        "latency_ms": latency.model_dump() if latency is not None else None,
        "reservoir": _merge_reservoirs(a, b, size, random.Random(seed)),
        "reservoir_of": a.reservoir_of + b.reservoir_of, "reservoir_size": size,
        "unknown_columns": sorted(set(a.unknown_columns) | set(b.unknown_columns))[
            :MAX_UNKNOWN],
    })


def _untimed(rows: int) -> NumericProfile:
    """The latency of rows that carried none: all null."""
    return NumericProfile(count=0, nulls=rows, edges=[], bins=[0],
                          kll=encode_kll(kll_doubles_sketch(1024)))
