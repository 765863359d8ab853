"""The DuckDB store. One process owns the file (DuckDB allows one read-write
process); inside it, the sink threads write and request threads read, each
through its own cursor. Events are stored once per (source, id) and inference
records once per id, so redelivered or retried input changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

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

UTC_US = pa.timestamp("us", tz="UTC")
T = TypeVar("T")


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


def first_per_key(rows: Sequence[T], key: Callable[[T], Hashable]) -> list[T]:
    """The first row of each key, in arrival order: one INSERT may not hold a key twice."""
    first: dict[Hashable, T] = {}
    for row in rows:
        first.setdefault(key(row), row)
    return list(first.values())


def stamps(now: datetime | None, n: int) -> pa.Array:
    """The `stored_at` column: one time (now unless given) for every row of a batch."""
    return pa.array([now or datetime.now(UTC)] * n, UTC_US)


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
        rows = first_per_key(rows, lambda r: (r.source, r.id))
        return self.insert_frame("events", pa.table({
            "id": [r.id for r in rows], "source": [r.source for r in rows],
            "type": [r.type for r in rows], "subject": pa.array([r.subject for r in rows],
                                                                pa.string()),
            "time": pa.array([r.time for r in rows], UTC_US),
            "model": pa.array([r.model for r in rows], pa.string()),
            "site": pa.array([r.site for r in rows], pa.string()),
            "event": [json.dumps(r.event) for r in rows],
            "topic": pa.array([r.topic for r in rows], pa.string()),
            "kafka_partition": pa.array([r.kafka_partition for r in rows], pa.int32()),
            "kafka_offset": pa.array([r.kafka_offset for r in rows], pa.int64()),
            "stored_at": stamps(now, len(rows)),
        }))

    def insert_inferences(self, rows: Sequence[tuple[InferenceRecord, int | None, int | None]],
                          now: datetime | None = None) -> int:
        """Store (record, partition, offset) rows once per record id; returns rows added.
        Built column by column into one Arrow table (DuckDB's fastest way in, no per-row
        conversion), the first row of an id in the batch kept."""
        if not rows:
            return 0
        rows = first_per_key(rows, lambda row: row[0].id)
        recs = [r for r, _, _ in rows]
        to_json = InferenceRecord.__pydantic_serializer__.to_json  # model_dump_json, less overhead
        return self.insert_frame("inferences", pa.table({
            "id": [r.id for r in recs], "model": [r.model for r in recs],
            "version": [r.version for r in recs], "site": [r.site for r in recs],
            "tier": [r.tier for r in recs], "node": pa.array([r.node for r in recs], pa.string()),
            "ts": pa.array([r.ts for r in recs], UTC_US),
            "latency_ms": pa.array([r.latency_ms for r in recs], pa.float64()),
            "error": pa.array([r.error for r in recs], pa.bool_()),
            "sample_rate": pa.array([r.sample_rate for r in recs], pa.float64()),
            "record": [to_json(r, by_alias=True).decode() for r in recs],
            "kafka_partition": pa.array([p for _, p, _ in rows], pa.int32()),
            "kafka_offset": pa.array([o for _, _, o in rows], pa.int64()),
            "stored_at": stamps(now, len(rows)),
        }))

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

    def insert_frame(self, table: str, frame: pd.DataFrame | pa.Table) -> int:
        """One set-based INSERT (no executemany), skipping rows whose key is stored already."""
        names = frame.column_names if isinstance(frame, pa.Table) else frame.columns
        cols = ", ".join(names)
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
