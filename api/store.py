"""The DuckDB store. One process owns the file (DuckDB allows one read-write
process); inside it, the sink threads write and request threads read, each
through its own cursor. Events are stored once per (source, id) and inference
records once per id, so redelivered or retried input changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from steward.schema import InferenceRecord

SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS events_seq;
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT DEFAULT nextval('events_seq'),
    id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    subject VARCHAR,
    time TIMESTAMPTZ,
    model VARCHAR,
    site VARCHAR,
    event JSON NOT NULL,
    topic VARCHAR,
    kafka_partition INTEGER,
    kafka_offset BIGINT,
    stored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE SEQUENCE IF NOT EXISTS inferences_seq;
CREATE TABLE IF NOT EXISTS inferences (
    seq BIGINT DEFAULT nextval('inferences_seq'),
    id VARCHAR PRIMARY KEY,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    tier VARCHAR NOT NULL,
    node VARCHAR,
    ts TIMESTAMPTZ NOT NULL,
    latency_ms DOUBLE NOT NULL,
    error BOOLEAN NOT NULL,
    sample_rate DOUBLE NOT NULL,
    record JSON NOT NULL,
    kafka_partition INTEGER,
    kafka_offset BIGINT,
    stored_at TIMESTAMPTZ NOT NULL
);
"""
INFERENCE_COLUMNS = ["id", "model", "version", "site", "tier", "node", "ts", "latency_ms",
                     "error", "sample_rate", "record", "kafka_partition", "kafka_offset",
                     "stored_at"]

COLUMNS = ["id", "source", "type", "subject", "time", "model", "site", "event", "topic",
           "kafka_partition", "kafka_offset", "stored_at"]


@dataclass(frozen=True)
class EventRow:
    """One event as stored: its CloudEvent JSON plus where it came from."""

    id: str
    source: str
    type: str
    subject: str | None
    time: datetime | None
    model: str | None
    site: str | None
    event: dict[str, Any]
    topic: str | None = None
    kafka_partition: int | None = None
    kafka_offset: int | None = None


@dataclass(frozen=True)
class EventQuery:
    type: str | None = None
    source: str | None = None
    subject: str | None = None
    model: str | None = None
    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


@dataclass(frozen=True)
class InferenceQuery:
    model: str | None = None
    version: str | None = None
    site: str | None = None
    tier: str | None = None
    node: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


def conditions(filters: dict[str, Any], time_col: str, since: datetime | None,
               until: datetime | None, where: list[str] | None = None,
               args: list[Any] | None = None) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters: `col = ?` per filter that is set, and
    `since <= time_col < until`. Column names are ours (never user input); values are
    bound parameters. `where`/`args` start the clause with conditions of the caller's."""
    where, args = list(where or []), list(args or [])
    for col, value in filters.items():
        if value is not None:
            where.append(f"{col} = ?")
            args.append(value)
    for op, bound in ((">=", since), ("<", until)):
        if bound is not None:
            where.append(f"{time_col} {op} ?")
            args.append(bound)
    return " AND ".join(where) or "TRUE", args


class Store:
    """Owns the DuckDB connection; hands out cursors per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = duckdb.connect(self.path)
        self._write_lock = threading.Lock()
        with self.cursor() as cur:
            cur.execute(SCHEMA)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        self._conn.close()

    def ping(self) -> bool:
        with self.cursor() as cur:
            return cur.execute("SELECT 1").fetchone() == (1,)

    def insert_events(self, rows: Sequence[EventRow], now: datetime | None = None) -> int:
        """Insert in one transaction; rows already stored are skipped. Returns rows added."""
        if not rows:
            return 0
        stamp = now or datetime.now(UTC)
        frame = pd.DataFrame(
            [[r.id, r.source, r.type, r.subject, r.time, r.model, r.site,
              json.dumps(r.event), r.topic, r.kafka_partition, r.kafka_offset, stamp]
             for r in rows], columns=COLUMNS,
        ).drop_duplicates(subset=["source", "id"])
        return self.insert_frame("events", frame)

    def insert_inferences(self, rows: Sequence[tuple[InferenceRecord, int | None, int | None]],
                          now: datetime | None = None) -> int:
        """Store (record, partition, offset) rows once per record id; returns rows added."""
        if not rows:
            return 0
        stamp = now or datetime.now(UTC)
        frame = pd.DataFrame(
            [[r.id, r.model, r.version, r.site, r.tier, r.node, r.ts, r.latency_ms, r.error,
              r.sample_rate, r.model_dump_json(by_alias=True), partition, offset, stamp]
             for r, partition, offset in rows], columns=INFERENCE_COLUMNS,
        ).drop_duplicates(subset=["id"])
        return self.insert_frame("inferences", frame)

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside one transaction, under the writer lock: all or nothing."""
        with self._write_lock, self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def insert_frame(self, table: str, frame: pd.DataFrame) -> int:
        """One set-based INSERT (no executemany), skipping rows whose key is stored already."""
        cols = ", ".join(frame.columns)
        with self._write_lock, self.cursor() as cur:
            cur.register("incoming", frame)
            try:
                (added,) = cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} "
                                       "FROM incoming ON CONFLICT DO NOTHING").fetchone()
            finally:
                cur.unregister("incoming")
        return int(added)

    def query_events(self, q: EventQuery) -> list[tuple[int, dict[str, Any]]]:
        """Events matching `q`, oldest first, after the `after` cursor: (seq, CloudEvent JSON)."""
        filters = {c: getattr(q, c) for c in ("type", "source", "subject", "model", "site")}
        return self.page("events", "event", "time", filters, q.since, q.until, q.after, q.limit)

    def count_events(self) -> int:
        with self.cursor() as cur:
            return cur.execute("SELECT count(*) FROM events").fetchone()[0]

    def count_inferences(self) -> int:
        with self.cursor() as cur:
            return cur.execute("SELECT count(*) FROM inferences").fetchone()[0]

    def query_inferences(self, q: InferenceQuery) -> list[tuple[int, dict[str, Any]]]:
        """Inference records matching `q`, in arrival order after the `after` cursor."""
        filters = {c: getattr(q, c) for c in ("model", "version", "site", "tier", "node")}
        return self.page("inferences", "record", "ts", filters, q.since, q.until, q.after,
                          q.limit)

    def page(self, table: str, doc: str, time_col: str, filters: dict[str, Any],
              since: datetime | None, until: datetime | None, after: int,
              limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Keyset paging by `seq` with equality filters and a time range; column names are
        ours, values are bound parameters."""
        where, args = conditions(filters, time_col, since, until, ["seq > ?"], [after])
        sql = f"SELECT seq, {doc} FROM {table} WHERE {where} ORDER BY seq LIMIT ?"
        with self.cursor() as cur:
            rows = cur.execute(sql, [*args, limit]).fetchall()
        return [(seq, json.loads(value)) for seq, value in rows]
