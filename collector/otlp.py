"""OTLP over HTTP, metrics: body bytes in, `MetricPoint`s and OTLP answers out.

The steps are separate so the HTTP layer stays thin and each step is testable:
`read_body` (Content-Encoding, size limit after decompression), `parse_otlp`
(protobuf or OTLP JSON, which is not quite protobuf's JSON), `metrics_to_points`
(one record per data point; a bad point is rejected alone, never the request),
and `metrics_response` / `status_body` (answers in the request's content type).
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from pydantic import ValidationError

from steward.codec import validation_reason
from steward.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from steward.schema import MetricPoint

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
MAX_ERRORS = 5
"""How many rejection reasons a `MappingResult` keeps: enough to fix a sender, bounded."""

M = TypeVar("M", bound=Message)


def read_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The request body, decompressed, never larger than `max_bytes`.

    The limit applies to the decompressed size, checked while inflating, so a small
    gzip bomb costs at most `max_bytes` of memory before it is refused with 413.
    """
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {max_bytes}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in _WBITS:
        raise UnsupportedMediaType(f"Content-Encoding {content_encoding!r} is not supported; "
                                   "use gzip, deflate or identity")
    name = "deflate" if encoding == "deflate" else "gzip"
    try:
        return _inflate(raw, _WBITS[encoding], max_bytes)
    except zlib.error as exc:
        raise InvalidInput(f"request body is not valid {name}: {exc}") from None


def _inflate(raw: bytes, wbits: int, max_bytes: int) -> bytes:
    """Inflate member after member (gzip allows several), stopping past `max_bytes`."""
    if not raw:
        raise zlib.error("empty body")
    out, data = bytearray(), raw
    while data:
        stream = zlib.decompressobj(wbits)
        pending = data
        while not stream.eof:
            chunk = stream.decompress(pending, max_bytes + 1 - len(out))
            out += chunk
            if len(out) > max_bytes:
                raise PayloadTooLarge(f"request body inflates past the limit of {max_bytes} bytes")
            pending = stream.unconsumed_tail
            if not chunk and not pending:
                raise zlib.error("truncated stream")
        data = stream.unused_data
    return bytes(out)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header: parameters dropped, lower case."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_media_type(content_type: str | None) -> str:
    """The media type to answer with: the request's (OTLP requires it), JSON when unknown."""
    return PROTOBUF if media_type(content_type) in _PROTOBUF_TYPES else JSON


def parse_otlp(body: bytes, content_type: str | None, message_cls: type[M]) -> M:
    """Any OTLP export request (metrics, traces, logs) from protobuf or OTLP JSON bytes.

    One place for the content-type dispatch and its errors, so every signal's
    endpoint answers bad input with the same 400/415 reasons.
    """
    kind = media_type(content_type)
    if kind in _PROTOBUF_TYPES:
        return _parse_protobuf(body, message_cls)
    if kind == JSON:
        return _parse_json(body, message_cls)
    raise UnsupportedMediaType(f"Content-Type {content_type!r} is not supported; "
                               f"use {PROTOBUF} or {JSON}")


def parse_metrics(body: bytes, content_type: str | None) -> ExportMetricsServiceRequest:
    """An OTLP metrics export request; see `parse_otlp`."""
    return parse_otlp(body, content_type, ExportMetricsServiceRequest)


def _parse_protobuf(body: bytes, message_cls: type[M]) -> M:
    msg = message_cls()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        name = message_cls.DESCRIPTOR.name
        raise InvalidInput(f"request body is not a valid {name} protobuf: {exc}") from None
    return msg


def _parse_json(body: bytes, message_cls: type[M]) -> M:
    """OTLP JSON: like protobuf JSON, except ids are hex and unknown fields are ignored."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"request body must be a JSON object, not {type(doc).__name__}")
    msg = message_cls()
    try:
        json_format.ParseDict(_hex_ids_to_base64(doc), msg, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        name = message_cls.DESCRIPTOR.name
        raise InvalidInput(f"request body is not a valid OTLP JSON {name}: {exc}") from None
    return msg


def _hex_ids_to_base64(node: Any, is_id: bool = False) -> Any:
    """A copy of a JSON document with hex trace/span ids rewritten as base64.

    OTLP JSON carries ids as hex; protobuf's JSON parser reads every `bytes` field
    as base64 and would turn a 32-digit hex trace id into 24 bytes of garbage.
    An id that is not hex is left to the parser (some old senders used base64).
    """
    if isinstance(node, dict):
        return {k: _hex_ids_to_base64(v, k in _ID_KEYS) for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    if is_id and isinstance(node, str):
        try:
            return base64.b64encode(bytes.fromhex(node)).decode()
        except ValueError:
            return node
    return node


@dataclass(frozen=True)
class MappingResult:
    """The points that validated, how many were rejected, and the first reasons why."""

    points: list[MetricPoint] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    dead: list[tuple[str, bytes]] = field(default_factory=list)
    """Every rejected point: (reason, its JSON with metric name and resource), for the DLQ."""

    @property
    def message(self) -> str:
        """The reasons as one line, for an OTLP partial-success `error_message`."""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


class _Rejected(Exception):
    """A data point that cannot become a record, with the reason the sender sees."""


_TEMPORALITY = {metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: "delta",
                metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative"}
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_IDENTITY = {  # field: (steward attribute, resource fallback, default)
    "model": ("steward.model", "service.name", None),
    "version": ("steward.model.version", "service.version", "unknown"),
    "site": ("steward.site", "cloud.region", "default"),
    "tier": ("steward.tier", None, "cloud"),
    "node": ("steward.node", "host.name", None),
}
_IDENTITY_KEYS = frozenset(key for key, _, _ in _IDENTITY.values())
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def metrics_to_points(req: ExportMetricsServiceRequest) -> MappingResult:
    """One `MetricPoint` per data point, each validated alone.

    A point that fails validation (NaN, a name with '/', a malformed histogram) is
    counted and explained, and its neighbours are kept: OTLP answers that with a
    partial success, which clients do not retry. Points flagged "no recorded value"
    are skipped, not rejected: they carry nothing to store.
    """
    points: list[MetricPoint] = []
    errors: list[str] = []
    dead: list[tuple[str, bytes]] = []
    for resource, metric, kind, dp in _data_points(req):
        if dp.flags & _NO_RECORDED_VALUE:
            continue
        try:
            points.append(_point(metric, kind, dp, resource))
        except (_Rejected, ValidationError) as exc:
            why = validation_reason(exc) if isinstance(exc, ValidationError) else str(exc)
            reason = f"metric {metric.name!r}: {why}"
            if len(errors) < MAX_ERRORS:
                errors.append(reason)
            raw = {"metric": metric.name, "kind": kind, "resource": resource,
                   "dataPoint": json_format.MessageToDict(dp)}
            dead.append((reason, json.dumps(raw, default=str).encode()))
    return MappingResult(points=points, rejected=len(dead), errors=errors, dead=dead)


def _data_points(req: ExportMetricsServiceRequest) -> Iterator[tuple[dict, Any, str, Any]]:
    """(resource attributes, metric, kind, data point) for every point, nesting flattened."""
    for rm in req.resource_metrics:
        resource = _attributes(rm.resource.attributes)
        for metric in (m for sm in rm.scope_metrics for m in sm.metrics):
            kind = metric.WhichOneof("data")
            for dp in getattr(metric, kind).data_points if kind else ():
                yield resource, metric, kind, dp


def _point(metric: metrics_pb2.Metric, kind: str, dp: Any, resource: dict[str, Any]) -> MetricPoint:
    """One record: identity from attributes, then the kind's own value fields."""
    if not dp.time_unix_nano:
        raise _Rejected("missing timeUnixNano")
    attrs = _attributes(dp.attributes)
    identity = _identity(resource, attrs)
    if identity["model"] is None:
        raise _Rejected("no model: set steward.model or the resource's service.name")
    body = getattr(metric, kind)
    fields: dict[str, Any] = {
        "name": metric.name,
        "kind": kind,
        "unit": metric.unit,
        "ts": _time(dp.time_unix_nano),
        "start_ts": _time(dp.start_time_unix_nano) if dp.start_time_unix_nano else None,
        "temporality": _TEMPORALITY.get(getattr(body, "aggregation_temporality", 0)),
        **identity,
        "attributes": {k: v for k, v in attrs.items() if k not in _IDENTITY_KEYS},
    }
    values = _VALUES[kind](dp)
    fields["attributes"].update(values.pop("attributes", {}))
    return MetricPoint(**fields, **values)


def _identity(resource: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """model/version/site/tier/node/service: the point's steward.* keys, then the resource's."""
    out: dict[str, Any] = {}
    for name, (key, fallback, default) in _IDENTITY.items():
        found = (point.get(key), resource.get(key), resource.get(fallback) if fallback else None)
        out[name] = next((str(v) for v in found if v not in (None, "")), default)
    service = resource.get("service.name")
    return {**out, "service": None if service is None else str(service)}


def _time(unix_nano: int) -> datetime:
    """Aware UTC time, exact to the microsecond (a float of seconds would not be)."""
    return _EPOCH + timedelta(microseconds=unix_nano // 1000)


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as flat scalars; arrays, maps and bytes become compact JSON/base64."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = _any_value(kv.value)
        if isinstance(value, list | dict):
            value = json.dumps(value, separators=(",", ":"))
        out[kv.key] = value
    return out


def _any_value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if which is None else getattr(value, which)


def _number(dp: metrics_pb2.NumberDataPoint) -> dict[str, Any]:
    which = dp.WhichOneof("value")
    if which is None:
        raise _Rejected("data point has neither asDouble nor asInt")
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


# HTTP status -> closest gRPC code: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
# PERMISSION_DENIED, UNAVAILABLE; anything else is UNKNOWN (2).
_GRPC_CODE = {400: 3, 413: 3, 415: 3, 429: 8, 401: 16, 403: 7, 502: 14, 503: 14, 504: 14}


def metrics_response(rejected: int, message: str, content_type: str | None) -> bytes:
    """The 200 answer to an export: partial_success only when something was rejected.

    OTLP says a full success leaves partial_success unset, and a partial success is
    final: clients must not retry it, so the message is the sender's only hint.
    """
    resp = ExportMetricsServiceResponse()
    if rejected > 0:
        resp.partial_success.rejected_data_points = rejected
        resp.partial_success.error_message = message
    return _serialise(resp, content_type)


def status_body(code: int, message: str, content_type: str | None) -> tuple[bytes, str]:
    """An error body (google.rpc.Status) and its media type, for HTTP status `code`.

    OTLP/HTTP error responses carry a Status in the request's encoding; its code is
    the gRPC code closest to the HTTP status (UNKNOWN when none is close).
    """
    status = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=message)
    return _serialise(status, content_type), response_media_type(content_type)


def _serialise(msg: Message, content_type: str | None) -> bytes:
    if response_media_type(content_type) == PROTOBUF:
        return msg.SerializeToString()
    return json.dumps(json_format.MessageToDict(msg), separators=(",", ":")).encode()
