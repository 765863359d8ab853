"""OTLP metrics -> `MetricPoint`s: one record per data point, each validated alone.

A bad point (NaN, a name with '/', a malformed histogram) is rejected alone, never
the request; see `metrics_to_points`. Identity rules are in `collector.otlp_attrs`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from pydantic import ValidationError

from collector.otlp import MappingResult
from collector.otlp_attrs import (
    IDENTITY_KEYS,
    NO_MODEL,
    Rejected,
    attributes,
    identity,
    reason_of,
    unix_time,
)
from steward.schema import MetricPoint

_TEMPORALITY = {metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: "delta",
                metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative"}
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK


def metrics_to_points(req: ExportMetricsServiceRequest) -> MappingResult:
    """One `MetricPoint` per data point, each validated alone.

    A point that fails validation (NaN, a name with '/', a malformed histogram) is
    counted and explained, and its neighbours are kept: OTLP answers that with a
    partial success, which clients do not retry. Points flagged "no recorded value"
    are ignored, not rejected: they carry nothing to store.
    """
    result = MappingResult()
    for resource, metric, kind, dp in _data_points(req):
        if dp.flags & _NO_RECORDED_VALUE:
            result.ignored += 1
            continue
        try:
            result.records.append(_point(metric, kind, dp, resource))
        except (Rejected, ValidationError) as exc:
            result.reject(f"metric {metric.name!r}: {reason_of(exc)}",
                          {"metric": metric.name, "kind": kind, "resource": resource,
                           "dataPoint": json_format.MessageToDict(dp)})
    return result


def _data_points(req: ExportMetricsServiceRequest) -> Iterator[tuple[dict, Any, str, Any]]:
    """(resource attributes, metric, kind, data point) for every point, nesting flattened."""
    for rm in req.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for metric in (m for sm in rm.scope_metrics for m in sm.metrics):
            kind = metric.WhichOneof("data")
            for dp in getattr(metric, kind).data_points if kind else ():
                yield resource, metric, kind, dp


def _point(metric: metrics_pb2.Metric, kind: str, dp: Any, resource: dict[str, Any]) -> MetricPoint:
    """One record: identity from attributes, then the kind's own value fields."""
    if not dp.time_unix_nano:
        raise Rejected("missing timeUnixNano")
    attrs = attributes(dp.attributes)
    ident = identity(resource, attrs)
    if ident["model"] is None:
        raise Rejected(NO_MODEL)
    body = getattr(metric, kind)
    fields: dict[str, Any] = {
        "name": metric.name,
        "kind": kind,
        "unit": metric.unit,
        "ts": unix_time(dp.time_unix_nano),
        "start_ts": unix_time(dp.start_time_unix_nano) if dp.start_time_unix_nano else None,
        "temporality": _TEMPORALITY.get(getattr(body, "aggregation_temporality", 0)),
        **ident,
        "attributes": {k: v for k, v in attrs.items() if k not in IDENTITY_KEYS},
    }
    values = _VALUES[kind](dp)
    fields["attributes"].update(values.pop("attributes", {}))
    return MetricPoint(**fields, **values)


def _number(dp: metrics_pb2.NumberDataPoint) -> dict[str, Any]:
    which = dp.WhichOneof("value")
    if which is None:
        raise Rejected("data point has neither asDouble nor asInt")
    return {"value": float(getattr(dp, which))}


def _stats(dp: Any) -> dict[str, Any]:
    """count, and sum/min/max where the sender set them (they are optional in OTLP)."""
    return {"count": dp.count, **{name: getattr(dp, name) if dp.HasField(name) else None
                                  for name in ("sum", "min", "max")}}


def _histogram(dp: metrics_pb2.HistogramDataPoint) -> dict[str, Any]:
    bounds, counts = list(dp.explicit_bounds), list(dp.bucket_counts)
    if not bounds and not counts:  # OTLP allows no buckets: one bucket, (-inf, +inf)
        counts = [dp.count]
    return {"histogram": {"bounds": bounds, "counts": counts, **_stats(dp)}}


def _exponential_histogram(dp: metrics_pb2.ExponentialHistogramDataPoint) -> dict[str, Any]:
    """An exponential histogram as an explicit-bucket one (bounds are upper edges).

    With base = 2**(2**-scale), positive bucket i (index = offset + i) holds values in
    (base**index, base**(index+1)], so its upper bound is base**(offset+i+1). Before
    the first positive bucket comes an empty bucket with upper bound base**offset, so
    that bucket keeps its true lower edge; before that, the zero bucket (zero_count)
    with upper bound 0. Non-empty negative buckets are mirrored below it, most negative
    first (upper bound -base**index), after an empty one ending at the most negative
    edge. The last count is the overflow bucket, always 0; len(counts) = len(bounds) + 1.
    Example: scale 0, zero_count 1, positive offset 1 counts [0, 2] ->
    bounds [0, 2, 4, 8], counts [1, 0, 0, 2, 0].
    """
    scale, bounds, counts = dp.scale, [0.0], [dp.zero_count]
    neg_offset, neg = dp.negative.offset, list(dp.negative.bucket_counts)
    if any(neg):  # edges from -base**(offset+n) up to -base**offset
        top = neg_offset + len(neg)
        bounds = [-_edge(scale, k) for k in range(top, neg_offset - 1, -1)] + bounds
        counts = [0, *reversed(neg), *counts]
    pos_offset, pos = dp.positive.offset, list(dp.positive.bucket_counts)
    if pos:  # edges from base**offset up to base**(offset+n)
        bounds += [_edge(scale, pos_offset + i) for i in range(len(pos) + 1)]
        counts += [0, *pos]
    return {"histogram": {"bounds": bounds, "counts": [*counts, 0], **_stats(dp)}}


def _edge(scale: int, index: int) -> float:
    """base**index for base = 2**(2**-scale); inf past float range (validation rejects it)."""
    try:
        return 2.0 ** (index * 2.0**-scale)
    except OverflowError:
        return math.inf


def _summary(dp: metrics_pb2.SummaryDataPoint) -> dict[str, Any]:
    """The mean as the value; each quantile as a `quantile.<q>` attribute."""
    quantiles = {f"quantile.{q.quantile!r}": q.value for q in dp.quantile_values}
    return {"value": dp.sum / dp.count if dp.count else None, "attributes": quantiles}


_VALUES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "gauge": _number, "sum": _number, "histogram": _histogram,
    "exponential_histogram": _exponential_histogram, "summary": _summary,
}

