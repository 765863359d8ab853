"""The decision log in the store: every policy decision once, in a hash chain.

Each stored decision gets `seq` (1, 2, ... in the order stored), `prev_hash` (the hash of
seq - 1; 64 zeros for seq 1) and

    hash = sha256(prev_hash + canonical(decision)), hex

where `canonical` is the decision's JSON form (`Decision.model_dump(mode="json",
by_alias=True)`) serialised with sorted keys, no whitespace (separators "," and ":"),
non-ASCII kept as is, encoded UTF-8. The stored `decision` column holds that text, and
verification re-parses and re-serialises it, so the chain covers content, not bytes.

Why a chain: an auditor must be able to tell that nobody edited or removed a decision
after the fact. Editing a row breaks its own hash; deleting one leaves a gap in `seq` or
breaks the next row's `prev_hash`; swapping two rows breaks the link. What a chain cannot
show alone is a cut tail or a chain rewritten from some row on: compare the head
(`verify` reports it) with a copy kept elsewhere for that.

A redelivered decision (same `decision_id`) is stored once and takes no place in the
chain, so at-least-once delivery never breaks it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from api.store import Store, conditions
from steward import topics as T
from steward.schema.governance import Decision
from steward.stream import Source

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq BIGINT PRIMARY KEY,
    decision_id VARCHAR NOT NULL UNIQUE,
    proposal_id VARCHAR NOT NULL,
    proposal_type VARCHAR NOT NULL,
    model VARCHAR,
    version VARCHAR,
    sites VARCHAR[] NOT NULL,
    allowed BOOLEAN NOT NULL,
    revision VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    decision JSON NOT NULL,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    kafka_partition INTEGER,
    kafka_offset BIGINT,
    stored_at TIMESTAMPTZ NOT NULL
);
"""
COLUMNS = ["seq", "decision_id", "proposal_id", "proposal_type", "model", "version", "sites",
           "allowed", "revision", "path", "ts", "decision", "prev_hash", "hash",
           "kafka_partition", "kafka_offset", "stored_at"]
CHECKED = ("decision_id", "proposal_id", "proposal_type", "model", "version", "allowed",
           "revision", "path")
"""Columns copied out of the decision for filtering; `verify` checks they still agree."""


def canonical(doc: dict[str, Any]) -> str:
    """The canonical JSON text of a decision document (what the hash covers)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hash: str, doc: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(doc)).encode("utf-8")).hexdigest()


def sites_of(doc: dict[str, Any]) -> list[str]:
    """The sites a decision is about: the gate puts them in `input.action.sites`."""
    action = doc.get("input", {}).get("action", {})
    sites = action.get("sites") if isinstance(action, dict) else None
    return [s for s in sites if isinstance(s, str)] if isinstance(sites, list) else []


@dataclass(frozen=True)
class DecisionQuery:
    model: str | None = None
    site: str | None = None
    allowed: bool | None = None
    proposal_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


@dataclass(frozen=True)
class ChainReport:
    """What `verify` found: the rows checked, the head, and the first break if any."""

    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None
    """`gap`, `link` (reordered, or the row before removed or rewritten) or `edited`."""
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


class DecisionStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.cursor() as cur:
            cur.execute(SCHEMA)

    def insert(self, items: Sequence[tuple[Decision, Source | None]],
               now: datetime | None = None) -> int:
        """Append the decisions not stored yet to the chain, in one transaction under the
        writer lock (the chain's head cannot move under us). Returns decisions added."""
        if not items:
            return 0
        stamp = now or datetime.now(UTC)
        with self.store.write() as cur:
            ids = list({d.decision_id for d, _ in items})
            seen = {r[0] for r in cur.execute(
                "SELECT decision_id FROM decisions WHERE decision_id IN "
                "(SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()}
            last = cur.execute("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1"
                               ).fetchall()
            head = last[0] if last else (0, GENESIS)
            rows = self._chain(items, seen, head, stamp)
            if rows:
                frame = pd.DataFrame(rows, columns=COLUMNS)
                cur.register("incoming_decisions", frame)
                try:
                    cur.execute(f"INSERT INTO decisions ({', '.join(COLUMNS)}) "
                                f"SELECT {', '.join(COLUMNS)} FROM incoming_decisions")
                finally:
                    cur.unregister("incoming_decisions")
        return len(rows)

    @staticmethod
    def _chain(items: Sequence[tuple[Decision, Source | None]], seen: set[str],
               head: tuple[int, str], stamp: datetime) -> list[list[Any]]:
        seq, prev = head
        rows = []
        for decision, src in items:
            if decision.decision_id in seen:
                continue
            seen.add(decision.decision_id)
            doc = decision.model_dump(mode="json", by_alias=True)
            seq, hashed = seq + 1, link(prev, doc)
            rows.append([seq, decision.decision_id, decision.proposal_id,
                         decision.proposal_type, decision.model, decision.version,
                         sites_of(doc), decision.allowed, decision.revision, decision.path,
                         decision.timestamp, canonical(doc), prev, hashed,
                         src.partition if src else None, src.offset if src else None, stamp])
            prev = hashed
        return rows

    def query(self, q: DecisionQuery) -> list[tuple[int, dict[str, Any]]]:
        """Decisions matching `q` in chain order after the `after` cursor: (seq, record)."""
        start, first = ["seq > ?"], [q.after]
        if q.site is not None:
            start.append("list_contains(sites, ?)")
            first.append(q.site)
        filters = {col: getattr(q, col) for col in ("model", "allowed", "proposal_type")}
        where, args = conditions(filters, "ts", q.since, q.until, start, first)
        sql = f"SELECT seq, decision FROM decisions WHERE {where} ORDER BY seq LIMIT ?"
        with self.store.cursor() as cur:
            rows = cur.execute(sql, [*args, q.limit]).fetchall()
        return [(seq, json.loads(doc)) for seq, doc in rows]

    def chained(self, where: str, value: str) -> list[dict[str, Any]]:
        """Stored decisions with their place in the chain (`seq`, `prev_hash`, `hash`)."""
        assert where in ("decision_id", "proposal_id")
        with self.store.cursor() as cur:
            rows = cur.execute(f"SELECT seq, prev_hash, hash, decision FROM decisions "
                               f"WHERE {where} = ? ORDER BY seq", [value]).fetchall()
        return [{"seq": seq, "prev_hash": prev, "hash": h, "decision": json.loads(doc)}
                for seq, prev, h, doc in rows]

    def verify(self) -> ChainReport:
        with self.store.cursor() as cur:
            return verify(cur)


def verify(cur: duckdb.DuckDBPyConnection, batch: int = 10_000) -> ChainReport:
    """Walk the chain in `seq` order and report the first row that does not hold: a
    missing seq, a `prev_hash` that is not the previous row's hash, a hash that is not
    its content's, or a filter column that disagrees with the stored decision."""
    cols = ", ".join(CHECKED)
    cur.execute(f"SELECT seq, prev_hash, hash, decision, {cols} FROM decisions ORDER BY seq")
    expected, prev, checked = 1, GENESIS, 0

    def broken(seq: int, problem: str, detail: str) -> ChainReport:
        return ChainReport(checked, expected - 1, prev, seq, problem, detail)

    while chunk := cur.fetchmany(batch):
        for seq, prev_hash, hashed, text, *copies in chunk:
            if seq != expected:
                return broken(expected, "gap", f"seq {expected} is missing (next stored: {seq})")
            if prev_hash != prev:
                return broken(seq, "link", f"prev_hash of seq {seq} is not the hash of seq "
                                           f"{seq - 1}: rows reordered, removed or rewritten")
            doc = json.loads(text)
            if link(prev_hash, doc) != hashed:
                return broken(seq, "edited", f"seq {seq}: the decision does not match its hash")
            for col, value in zip(CHECKED, copies, strict=True):
                if doc.get(col) != value:
                    return broken(seq, "edited", f"seq {seq}: column {col} is {value!r}, "
                                                 f"the decision says {doc.get(col)!r}")
            expected, prev, checked = expected + 1, hashed, checked + 1
    return ChainReport(checked, expected - 1, prev)


class DecisionSink:
    """Stores the gate's decisions (one per proposal) in the chain: what /audit serves."""

    name = "decision-sink"
    inputs = (T.DECISIONS,)

    def __init__(self, decisions: DecisionStore) -> None:
        self.decisions = decisions

    def write(self, items: Sequence[tuple[Decision, Source]]) -> None:
        self.decisions.insert(list(items))
