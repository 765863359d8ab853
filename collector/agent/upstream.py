"""What the collector's answer means for the entries a request carried.

Pure functions from (status, headers, body) to an `Outcome`, so every rule the
forwarder follows is testable without a network:

| answer | outcome | the forwarder |
|---|---|---|
| 200 (partial success or rejected records included) | delivered | deletes the entries |
| 400 | bad | splits a merged batch; an entry alone goes to the dead table |
| 413 | too_large | halves the batch; an entry alone goes to the dead table |
| 401, 403 | refused | keeps everything, logs that the token is refused, retries slowly |
| 429, 502, 503, 504, other 5xx, no answer | retry | backs off (Retry-After when given) |
| anything else (404, 415, ...) | unexpected | keeps everything, retries slowly |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from collector.agent.signals import Signal
from collector.otlp import JSON, PROTOBUF, media_type

Kind = Literal["delivered", "bad", "too_large", "refused", "retry", "unexpected"]
RETRYABLE = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Outcome:
    """One attempt's result. `code` is the HTTP status, or "none" when nothing answered."""

    kind: Kind
    code: str
    reason: str = ""
    retry_after: float | None = None
    rejected: int = 0
    """Items the collector rejected within a 200 (it dead-letters them itself)."""
    timed_out: bool = False


def no_answer(reason: str, timed_out: bool = False) -> Outcome:
    return Outcome("retry", "none", reason, timed_out=timed_out)


def classify(signal: Signal, status: int, headers: dict[str, str], body: bytes,
             now: datetime | None = None) -> Outcome:
    """The outcome of an answer with `status`; headers are looked up in lower case."""
    code = str(status)
    if status == 200:
        rejected, why = rejected_in(signal, headers.get("content-type"), body)
        return Outcome("delivered", code, why, rejected=rejected)
    reason = error_reason(headers.get("content-type"), body) or f"HTTP {status}"
    if status == 400:
        return Outcome("bad", code, reason)
    if status == 413:
        return Outcome("too_large", code, reason)
    if status in (401, 403):
        return Outcome("refused", code, reason)
    if status in RETRYABLE or status >= 500:
        after = retry_after(headers.get("retry-after"), now) if status in RETRYABLE else None
        return Outcome("retry", code, reason, retry_after=after)
    return Outcome("unexpected", code, reason)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def rejected_in(signal: Signal, content_type: str | None, body: bytes) -> tuple[int, str]:
    """(items rejected, why) from a 200: OTLP `partial_success` or the inference answer."""
    try:
        if not signal.is_otlp:
            doc = json.loads(body or b"{}")
            errors = doc.get("errors") or []
            return int(doc.get("rejected") or 0), "; ".join(
                f"record {e.get('index')}: {e.get('reason')}" for e in errors[:5])
        assert signal.otlp is not None
        resp = signal.otlp.response_cls()
        if media_type(content_type) == JSON:
            json_format.Parse(body or b"{}", resp, ignore_unknown_fields=True)
        else:
            resp.ParseFromString(body)
        partial = resp.partial_success  # type: ignore[attr-defined]
        return int(getattr(partial, signal.otlp.rejected_field)), partial.error_message
    except (ValueError, AttributeError, TypeError, DecodeError, json_format.ParseError):
        return 0, ""  # a 200 is a 200: an odd body does not undo the delivery


def error_reason(content_type: str | None, body: bytes) -> str:
    """A short reason from an error body: JSON `detail`/`message`, a google.rpc.Status,
    or the text itself."""
    if not body:
        return ""
    if media_type(content_type) == JSON or body[:1] in (b"{", b"["):
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            parts = [str(doc[k]) for k in ("detail", "message") if doc.get(k)]
            parts += [f"record {e.get('index')}: {e.get('reason')}"
                      for e in (doc.get("errors") or [])[:5] if isinstance(e, dict)]
            return "; ".join(parts)[:2000] or body[:500].decode(errors="replace")
    if media_type(content_type) in (PROTOBUF, "application/protobuf"):
        status = status_pb2.Status()
        try:
            status.ParseFromString(body)
            return status.message[:2000] or f"gRPC code {status.code}"
        except DecodeError:
            pass
    return body[:500].decode(errors="replace")
