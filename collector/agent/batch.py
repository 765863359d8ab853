"""Many spooled entries of one signal as one upstream request.

Per-request overhead, not bytes, bounds what a slow link and the collector can
take, so the forwarder merges consecutive entries: inference batches by
concatenating their `records` lists, OTLP requests by parsing each to protobuf and
`MergeFrom` (repeated fields concatenate, so resources simply follow each other).
OTLP always goes upstream as protobuf: smaller than JSON and cheaper to parse.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from collector.agent.signals import SIGNALS, Signal
from collector.agent.spool import Entry
from collector.otlp import JSON, PROTOBUF, media_type
from steward.errors import InvalidInput


@dataclass(frozen=True)
class Batch:
    """One upstream request: its uncompressed body and the entries it carries."""

    signal: Signal
    entries: tuple[Entry, ...]
    content_type: str
    body: bytes

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.entries]

    @property
    def records(self) -> int:
        return sum(e.records for e in self.entries)


def encode_records(records: Sequence[dict]) -> bytes:
    """The JSON body of an inference batch, as the intake stores it and the forwarder sends it."""
    return json.dumps({"records": list(records)}, separators=(",", ":"),
                      allow_nan=False).encode()


def merge(entries: Sequence[Entry]) -> Batch:
    """One request for `entries` (all of one signal). Raises `InvalidInput` when an
    entry's body does not parse: the caller then sends entries one by one."""
    if not entries:
        raise ValueError("no entries to merge")
    signal = SIGNALS[entries[0].signal]
    if any(e.signal != signal.name for e in entries):
        raise ValueError("entries of different signals cannot share a request")
    if signal.is_otlp:
        return Batch(signal, tuple(entries), PROTOBUF, _merge_otlp(signal, entries))
    if len(entries) == 1:
        return Batch(signal, tuple(entries), JSON, entries[0].body)
    return Batch(signal, tuple(entries), JSON, encode_records(_all_records(entries)))


def _merge_otlp(signal: Signal, entries: Sequence[Entry]) -> bytes:
    if len(entries) == 1 and media_type(entries[0].content_type) == PROTOBUF:
        return entries[0].body  # already what goes upstream
    assert signal.otlp is not None
    merged = signal.otlp.request()
    for entry in entries:
        merged.MergeFrom(signal.otlp.parse(entry.body, entry.content_type))
    return merged.SerializeToString()


def _all_records(entries: Sequence[Entry]) -> list[dict]:
    records: list[dict] = []
    for entry in entries:
        try:
            doc = json.loads(entry.body)
        except ValueError as exc:
            raise InvalidInput(f"spool entry {entry.id} is not JSON: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
            raise InvalidInput(f'spool entry {entry.id} is not {{"records": [...]}}')
        records.extend(doc["records"])
    return records
