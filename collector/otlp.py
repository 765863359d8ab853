"""OTLP over HTTP, every signal: body bytes in, export requests and OTLP answers out.

The steps are separate so the HTTP layer stays thin and each step is testable:
`read_body` (Content-Encoding, size limit after decompression), `Signal.parse`
(protobuf or OTLP JSON, which is not quite protobuf's JSON), a mapping to records
(`collector.otlp_metrics`, `collector.otlp_inference`: one item at a time, a bad item
is rejected alone, never the request, into a `MappingResult`), and
`Signal.response` / `status_body` (answers in the request's content type).
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from steward.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

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


@dataclass
class MappingResult:
    """What one export request became: the records that validated, how many items were
    ignored (not for Steward, e.g. a span that is no inference), and every rejected item
    with its reason (the first `MAX_ERRORS` reasons are kept for the sender)."""

    records: list[Any] = field(default_factory=list)
    ignored: int = 0
    errors: list[str] = field(default_factory=list)
    dead: list[tuple[str, bytes]] = field(default_factory=list)
    """Every rejected item: (reason, its JSON with the resource attributes), for the DLQ."""

    @property
    def rejected(self) -> int:
        return len(self.dead)

    def reject(self, reason: str, raw: dict[str, Any]) -> None:
        """Count and explain one rejected item; `raw` is what the dead letter keeps."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(reason)
        self.dead.append((reason, json.dumps(raw, default=str).encode()))

    @property
    def message(self) -> str:
        """The reasons as one line, for an OTLP partial-success `error_message`."""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


# HTTP status -> closest gRPC code: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAUTHENTICATED,
# PERMISSION_DENIED, UNAVAILABLE; anything else is UNKNOWN (2).
_GRPC_CODE = {400: 3, 413: 3, 415: 3, 429: 8, 401: 16, 403: 7, 502: 14, 503: 14, 504: 14}


@dataclass(frozen=True)
class Signal:
    """One OTLP signal's messages: its export request, its response, and the response's
    partial-success counter."""

    name: str
    request: type[Message]
    response_cls: type[Message]
    rejected_field: str

    def parse(self, body: bytes, content_type: str | None) -> Any:
        """This signal's export request from protobuf or OTLP JSON; see `parse_otlp`."""
        return parse_otlp(body, content_type, self.request)

    def response(self, rejected: int, message: str, content_type: str | None) -> bytes:
        """The 200 answer to an export: partial_success only when something was rejected.

        OTLP says a full success leaves partial_success unset, and a partial success is
        final: clients must not retry it, so the message is the sender's only hint.
        """
        resp = self.response_cls()
        if rejected > 0:
            setattr(resp.partial_success, self.rejected_field, rejected)
            resp.partial_success.error_message = message
        return _serialise(resp, content_type)


METRICS = Signal("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse,
                 "rejected_data_points")
TRACES = Signal("traces", ExportTraceServiceRequest, ExportTraceServiceResponse,
                "rejected_spans")
LOGS = Signal("logs", ExportLogsServiceRequest, ExportLogsServiceResponse,
              "rejected_log_records")


def parse_metrics(body: bytes, content_type: str | None) -> ExportMetricsServiceRequest:
    """An OTLP metrics export request; see `parse_otlp`."""
    return METRICS.parse(body, content_type)


def metrics_response(rejected: int, message: str, content_type: str | None) -> bytes:
    """The answer to a metrics export; see `Signal.response`."""
    return METRICS.response(rejected, message, content_type)


def status_body(code: int, message: str, content_type: str | None,
                reason: str | None = None) -> tuple[bytes, str]:
    """An error body (google.rpc.Status) and its media type, for HTTP status `code`.

    OTLP/HTTP error responses carry a Status in the request's encoding; its code is
    the gRPC code closest to the HTTP status (UNKNOWN when none is close). `reason`,
    Steward's machine-readable error code (e.g. `site_not_allowed`), rides in the
    Status details as a google.rpc.ErrorInfo, the standard place for it.
    """
    status = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=message)
    if reason:
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain="steward"))
    return _serialise(status, content_type), response_media_type(content_type)


def _serialise(msg: Message, content_type: str | None) -> bytes:
    if response_media_type(content_type) == PROTOBUF:
        return msg.SerializeToString()
    return json.dumps(json_format.MessageToDict(msg), separators=(",", ":")).encode()
