"""Feature profiles: a window of inference records summarised at the edge.

On a thin link an edge agent sends, per (model, version, site) and window, one
mergeable profile instead of every record's features: per column the counts on
fixed bins (edges from the reference's quantiles), a KLL sketch, moments and null
counts, or exact frequent-item counts; plus a small uniform sample of whole rows.
The drift judge reads profiles as well as raw records.

A profile is checked for internal consistency here, so a hostile or corrupted one
is rejected with a reason before anything uses it: every column accounts for every
row exactly once, bin counts add up to the finite count, the KLL sketch decodes and
holds that many values, every list is bounded. The `id` is derived from the content
(as for records), so a profile rebuilt from the same records has the same id.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from steward.schema.events import Window
from steward.schema.records import Features, Frozen, Name, RecordId, Tier, _Identified

MAX_COLUMNS = 1024
MAX_EDGES = 1024
MAX_CATEGORIES = 10_000
"""Distinct values a categorical column may list (builders cap lower and count the rest)."""
MAX_CATEGORY_CHARS = 1024
MAX_RESERVOIR = 4096
MAX_KLL_CHARS = 1_000_000
"""Base64 text of one KLL sketch; k = 1024 serialises to about 25 KB at any n."""
MAX_UNKNOWN = 64
SPEC_ID_PATTERN = r"^[0-9a-f]{64}$"

Count = Annotated[int, Field(ge=0, le=2**53)]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CategoryValue = StrictBool | StrictInt | StrictFloat | Annotated[
    str, StringConstraints(max_length=MAX_CATEGORY_CHARS)]
"""A categorical value keeps its JSON type: "1", 1, 1.0 and true are four categories."""


class TimeWindow(Window):
    """The event-time window [start, end) a profile covers (tumbling, epoch-aligned)."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")
        return self


def decode_kll(text: str):  # -> datasketches.kll_doubles_sketch (imported lazily)
    """The sketch in a profile's `kll` text; `ValueError` with the reason when it is not one."""
    from datasketches import kll_doubles_sketch

    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"kll is not base64: {exc}") from None
    try:
        return kll_doubles_sketch.deserialize(raw)
    except Exception as exc:  # noqa: BLE001 - the C++ binding raises several kinds
        raise ValueError(f"kll is not a serialized KLL doubles sketch: {exc}") from None


class NumericProfile(Frozen):
    """A numerical column in one window. Every row is exactly one of: a finite value
    (`count`), null (missing, None or NaN), infinite, or invalid (not a number)."""

    kind: Literal["numerical"] = "numerical"
    count: Count
    nulls: Count = 0
    infinite: Count = 0
    invalid: Count = 0
    edges: Annotated[list[float], Field(max_length=MAX_EDGES)]
    """Interior bin edges (from the reference's quantiles); bin i holds edges[i-1] <= v <
    edges[i], the first everything below edges[0], the last everything from the last edge."""
    bins: Annotated[list[Count], Field(max_length=MAX_EDGES + 1)]
    kll: Annotated[str, StringConstraints(max_length=MAX_KLL_CHARS)]
    """A KLL doubles sketch (Apache DataSketches) of the finite values, serialized, base64."""
    sum: float | None = None
    """Sum of the finite values; None when it overflowed a double."""
    sum_sq: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NumericProfile:
        if len(self.bins) != len(self.edges) + 1:
            raise ValueError(f"{len(self.bins)} bin counts for {len(self.edges)} edges; "
                             "expected len(edges) + 1")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly increasing")
        if sum(self.bins) != self.count:
            raise ValueError(f"bin counts add up to {sum(self.bins)}, not count {self.count}")
        if (self.min is None) != (self.count == 0) or (self.max is None) != (self.count == 0):
            raise ValueError("min and max are set exactly when count > 0")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        if self.sum_sq is not None and self.sum_sq < 0:
            raise ValueError("sum_sq is negative")
        sketch = decode_kll(self.kll)
        if sketch.n != self.count:
            raise ValueError(f"kll holds {sketch.n} values, not count {self.count}")
        return self

    @property
    def rows(self) -> int:
        return self.count + self.nulls + self.infinite + self.invalid

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count and self.sum is not None else None


class CategoricalProfile(Frozen):
    """A categorical column in one window: exact counts per distinct value, most frequent
    first; values past the builder's cap are counted in `other`, never silently lost."""

    kind: Literal["categorical"] = "categorical"
    count: Count
    """Non-null values: the listed counts plus `other`."""
    nulls: Count = 0
    invalid: Count = 0
    """Values that cannot be a category: nested objects, infinities, overlong strings."""
    values: Annotated[list[tuple[CategoryValue, Annotated[int, Field(ge=1, le=2**53)]]],
                      Field(max_length=MAX_CATEGORIES)]
    """[value, count] pairs sorted by count descending, then by repr."""
    other: Count = 0

    @model_validator(mode="after")
    def _consistent(self) -> CategoricalProfile:
        listed = sum(c for _, c in self.values)
        if listed + self.other != self.count:
            raise ValueError(f"value counts ({listed}) plus other ({self.other}) are not "
                             f"count {self.count}")
        keys = {(type(v).__name__, v) for v, _ in self.values}
        if len(keys) != len(self.values):
            raise ValueError("a value is listed twice")
        if any(isinstance(v, float) and not math.isfinite(v) for v, _ in self.values):
            raise ValueError("values must be finite")
        return self

    @property
    def rows(self) -> int:
        return self.count + self.nulls + self.invalid


ColumnProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class FeatureProfile(_Identified):
    """One (model, version, site) window of inference records, summarised.

    `rows` records were profiled; each column of the profile spec (`spec_id`) accounts
    for each of them once. `reservoir` is a uniform sample of at most `reservoir_size`
    whole rows (features, and the prediction under the spec's prediction column) drawn
    from `reservoir_of` rows. `latency_ms` and `errors` keep what the records said
    about serving, since a profile replaces the records on the link.
    """

    schema_: Literal["steward.feature.profile.v1"] = Field("steward.feature.profile.v1",
                                                           alias="schema")
    id: RecordId = None
    model: Name
    version: Name
    site: Name
    tier: Tier = "edge"
    node: Name | None = None
    """The node that profiled the rows; None when merged from several."""
    window: TimeWindow
    spec_id: Annotated[str, StringConstraints(pattern=SPEC_ID_PATTERN)]
    rows: Count
    errors: Count = 0
    """Rows whose record had `error` set."""
    weight: Annotated[float, Field(ge=0)] = 0.0
    """Inferences the rows stand for: the sum of 1 / sample_rate (equals rows unsampled)."""
    columns: Annotated[dict[ColumnName, ColumnProfile], Field(max_length=MAX_COLUMNS)]
    latency_ms: NumericProfile | None = None
    reservoir: Annotated[list[Features], Field(max_length=MAX_RESERVOIR)] = Field(
        default_factory=list)
    reservoir_of: Count = 0
    reservoir_size: Annotated[int, Field(ge=0, le=MAX_RESERVOIR)] = 0
    """Capacity of the reservoir: it holds min(reservoir_size, reservoir_of) rows."""
    unknown_columns: Annotated[list[ColumnName], Field(max_length=MAX_UNKNOWN)] = Field(
        default_factory=list)
    """Feature names seen in the rows that the spec does not know (the first few)."""

    model_config = ConfigDict(populate_by_name=True)
    id_prefix = "prof"

    @model_validator(mode="after")
    def _consistent(self) -> FeatureProfile:
        for name, column in self.columns.items():
            if column.rows != self.rows:
                raise ValueError(f"column {name!r} accounts for {column.rows} rows, "
                                 f"the profile for {self.rows}")
        if self.errors > self.rows:
            raise ValueError("more errors than rows")
        if self.latency_ms is not None and self.latency_ms.rows != self.rows:
            raise ValueError(f"latency_ms accounts for {self.latency_ms.rows} rows, "
                             f"the profile for {self.rows}")
        if self.reservoir_of > self.rows:
            raise ValueError("reservoir_of exceeds rows")
        if len(self.reservoir) != min(self.reservoir_size, self.reservoir_of):
            raise ValueError(f"reservoir holds {len(self.reservoir)} rows; expected "
                             f"min(reservoir_size, reservoir_of) = "
                             f"{min(self.reservoir_size, self.reservoir_of)}")
        return self
