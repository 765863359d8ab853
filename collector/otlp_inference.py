"""OTLP traces and logs -> `InferenceRecord`s.

A span or a log record is an *inference* when its own attributes carry
`steward.prediction` or at least one `steward.feature.<name>`; anything else is
ignored (counted, never rejected): most spans and logs are not for Steward.
Identity (model, version, site, tier, node) follows the same rules as for metrics
(`collector.otlp_attrs.identity`). An inference that does not validate is rejected
alone, with its reason, and dead-lettered; its neighbours are kept.

The field-by-field mapping is documented in docs/ingest.md ("OTLP traces and logs").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from pydantic import ValidationError

from collector.otlp import MappingResult
from collector.otlp_attrs import (
    NO_MODEL,
    Rejected,
    attributes,
    hex_ids,
    identity,
    reason_of,
    unix_time,
)
from steward.schema import InferenceRecord

FEATURE = "steward.feature."
PREDICTION = "steward.prediction"
ID = "steward.inference.id"
LATENCY = "steward.latency_ms"
LABEL = "steward.label"
_STATUS_ERROR = trace_pb2.Status.STATUS_CODE_ERROR


def is_inference(attrs: dict[str, Any]) -> bool:
    """True when the item's own attributes carry a prediction or at least one feature."""
    return PREDICTION in attrs or any(k.startswith(FEATURE) and len(k) > len(FEATURE)
                                      for k in attrs)


def spans_to_records(req: ExportTraceServiceRequest) -> MappingResult:
    """One `InferenceRecord` per inference span; other spans are counted as ignored."""
    return _map(((resource, span, attributes(span.attributes)) for resource, span in _spans(req)),
                _from_span, "span",
                lambda i, span, attrs: f"span {span.name!r} {span.span_id.hex() or '(no spanId)'}")


def logs_to_records(req: ExportLogsServiceRequest) -> MappingResult:
    """One `InferenceRecord` per inference log record; other records are counted as ignored."""
    return _map(((resource, log, attributes(log.attributes)) for resource, log in
                 _log_records(req)), _from_log, "logRecord",
                lambda i, log, attrs: f"log record {i}" + (f" ({attrs[ID]})" if attrs.get(ID)
                                                           else ""))


Item = TypeVar("Item", trace_pb2.Span, logs_pb2.LogRecord)


def _map(items: Iterable[tuple[dict[str, Any], Item, dict[str, Any]]],
         convert: Callable[[Item, dict[str, Any], dict[str, Any]], InferenceRecord],
         kind: str, describe: Callable[[int, Item, dict[str, Any]], str]) -> MappingResult:
    """The loop both signals share: items without inference attributes are ignored, the
    others mapped, and a failed mapping rejected with what it was, why, and its JSON."""
    result = MappingResult()
    for index, (resource, item, attrs) in enumerate(items):
        if not is_inference(attrs):
            result.ignored += 1
            continue
        try:
            result.records.append(convert(item, attrs, resource))
        except (Rejected, ValidationError) as exc:
            result.reject(f"{describe(index, item, attrs)}: {reason_of(exc)}",
                          {kind: hex_ids(json_format.MessageToDict(item)),
                           "resource": resource})
    return result


def _spans(req: ExportTraceServiceRequest) -> Iterator[tuple[dict[str, Any], trace_pb2.Span]]:
    for rs in req.resource_spans:
        resource = attributes(rs.resource.attributes)
        for span in (s for ss in rs.scope_spans for s in ss.spans):
            yield resource, span


def _log_records(req: ExportLogsServiceRequest
                 ) -> Iterator[tuple[dict[str, Any], logs_pb2.LogRecord]]:
    for rl in req.resource_logs:
        resource = attributes(rl.resource.attributes)
        for log in (r for sl in rl.scope_logs for r in sl.log_records):
            yield resource, log


def _from_span(span: trace_pb2.Span, attrs: dict[str, Any],
               resource: dict[str, Any]) -> InferenceRecord:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not start or not end:
        raise Rejected("missing " + ("startTimeUnixNano" if not start else "endTimeUnixNano"))
    if end < start:
        raise Rejected(f"endTimeUnixNano {end} is before startTimeUnixNano {start}")
    fields = _common(attrs, resource)
    if not fields.get("id") and span.trace_id and span.span_id:
        fields["id"] = f"span-{span.trace_id.hex()}{span.span_id.hex()}"
    if span.status.code == _STATUS_ERROR:
        fields["error"] = True
    return InferenceRecord(**fields, ts=unix_time(end), latency_ms=(end - start) / 1e6)


def _from_log(log: logs_pb2.LogRecord, attrs: dict[str, Any],
              resource: dict[str, Any]) -> InferenceRecord:
    when = log.time_unix_nano or log.observed_time_unix_nano
    if not when:
        raise Rejected("missing timeUnixNano and observedTimeUnixNano")
    latency = attrs.get(LATENCY)
    if latency is None:
        raise Rejected(f"missing {LATENCY}: an inference log record needs its latency")
    if isinstance(latency, bool) or not isinstance(latency, int | float):
        raise Rejected(f"{LATENCY} must be a number (intValue or doubleValue), "
                       f"not {latency!r}")
    return InferenceRecord(**_common(attrs, resource), ts=unix_time(when),
                           latency_ms=latency)


def _common(attrs: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """Identity, features, prediction, label, error, sample rate and id from attributes."""
    ident = identity(resource, attrs)
    ident.pop("service")  # metrics keep it; an inference record has no such field
    if ident["model"] is None:
        raise Rejected(NO_MODEL)
    features = {k[len(FEATURE):]: v for k, v in attrs.items()
                if k.startswith(FEATURE) and len(k) > len(FEATURE)}
    scalars = {PREDICTION: attrs.get(PREDICTION), LABEL: attrs.get(LABEL),
               **{FEATURE + k: v for k, v in features.items()}}
    for key, value in scalars.items():  # say which attribute, not a pydantic union's 4 errors
        if isinstance(value, float) and not math.isfinite(value):
            raise Rejected(f"{key} is {value}: only finite numbers are accepted")
    sample_rate = attrs.get("steward.sample_rate")
    fields: dict[str, Any] = {
        **ident, "features": features,
        "prediction": scalars[PREDICTION], "label": scalars[LABEL],
        "error": attrs.get("steward.error") or False,
        "sample_rate": 1.0 if sample_rate is None else sample_rate,
    }
    if attrs.get(ID) not in (None, ""):
        fields["id"] = str(attrs[ID])
    return fields
