"""Bytes <-> records for every topic payload kind; failures come back as data.

A telemetry message is `{"schema": ..., "records": [...]}`. Decoding never
raises on bad input: the records that validate come back as items and every
failure as a `Rejected` with a reason, so one bad record never stalls a
partition or takes its neighbours down with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, TypeAdapter, ValidationError, create_model

from steward.schema import from_kafka

Headers = list[tuple[str, bytes]]
JSON_HEADERS: Headers = [("content-type", b"application/json")]


@dataclass(frozen=True)
class Rejected:
    """One thing that could not be decoded: why, and the bytes it came as."""

    reason: str
    error_type: str
    raw: bytes
    index: int | None = None


@dataclass
class Decoded:
    items: list[Any] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def validation_reason(exc: ValidationError) -> str:
    """A short, readable summary of a pydantic error: field path and message."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(record)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def encode_batch(records: Sequence[BaseModel]) -> bytes:
    """One Kafka message value for records that share a key and a schema."""
    if not records:
        raise ValueError("empty batch")
    return next(pack_batches(records, len(records), 2**62))


def pack_batches(records: Sequence[BaseModel], max_records: int,
                 max_bytes: int) -> Iterator[bytes]:
    """Message values holding the records in order, each at most `max_records` records and
    `max_bytes` bytes (a single larger record still gets a message of its own: the caller
    decides whether to refuse it)."""
    if not records:
        return
    schema = json.dumps(records[0].model_dump(by_alias=True)["schema"]).encode()
    head, tail = b'{"schema":' + schema + b',"records":[', b"]}"
    docs: list[bytes] = []
    size = len(head) + len(tail)
    for record in records:  # model_dump_json's serializer, as bytes: no str round trip
        doc = type(record).__pydantic_serializer__.to_json(record, by_alias=True)
        if docs and (len(docs) >= max_records or size + len(doc) + 1 > max_bytes):
            yield head + b",".join(docs) + tail
            docs, size = [], len(head) + len(tail)
        docs.append(doc)
        size += len(doc) + 1
    yield head + b",".join(docs) + tail


def decode_batch(value: bytes | None, record: type[BaseModel]) -> Decoded:
    """Validate each record of a batch message; keep the good, reject the bad with reasons."""
    out = Decoded()
    try:  # the common case, a well-formed batch of valid records: parsed from the bytes and
        out.items = batch_model(record).model_validate_json(value or b"").records  # validated
        return out  # in one call, no Python dicts in between
    except ValidationError:
        pass  # find out what is wrong, below, the way it always has: same reasons
    try:
        doc = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting: RecursionError
        out.rejected.append(Rejected(f"not JSON: {exc}", "json", value or b""))
        return out
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        out.rejected.append(
            Rejected("expected an object with a 'records' list", "shape", value or b"")
        )
        return out
    # One by one, with a reason each. No whole-list try first: the bytes already failed as
    # a batch, and a list that passes in Python mode (only a value json.loads takes but the
    # JSON parser does not, e.g. a UTF-8 BOM) gives these same items anyway.
    for i, item in enumerate(records):
        try:
            out.items.append(record.model_validate(item))
        except ValidationError as exc:
            raw = json.dumps(item, default=str).encode()
            out.rejected.append(Rejected(validation_reason(exc), "schema", raw, i))
    return out


@cache
def batch_model(record: type[BaseModel]) -> type[BaseModel]:
    """A message value's shape, `{"records": [record, ...]}` (other keys ignored), built
    once per record type."""
    return create_model(f"{record.__name__}Batch", records=(list[record], ...))


@cache
def list_adapter(record: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """A validator for a whole list of `record`, built once per record type."""
    return TypeAdapter(list[record])  # type: ignore[valid-type]


def decode_event(key: bytes | None, value: bytes | None, headers: Headers) -> Decoded:
    """A binary-mode CloudEvent, or a rejection saying why it is not one."""
    out = Decoded()
    try:
        event: CloudEvent = from_kafka(key, value or b"", headers)
        out.items.append(event)
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; all mean "bad event"
        out.rejected.append(Rejected(f"not a CloudEvent: {exc}", "cloudevent", value or b""))
    return out
