"""The DuckDB store. One process owns the file (DuckDB allows one read-write
process); inside it, the sink thread writes and request threads read, each
through its own cursor. Events are stored once per (source, id), so redelivered
events change nothing.
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
"""

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
        cols = ", ".join(COLUMNS)
        with self._write_lock, self.cursor() as cur:
            cur.register("incoming", frame)
            try:
                (added,) = cur.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM incoming "
                                       "ON CONFLICT DO NOTHING").fetchone()
            finally:
                cur.unregister("incoming")
        return int(added)

    def query_events(self, q: EventQuery) -> list[tuple[int, dict[str, Any]]]:
        """Events matching `q`, oldest first, after the `after` cursor: (seq, CloudEvent JSON)."""
        where, args = ["seq > ?"], [q.after]
        for col in ("type", "source", "subject", "model", "site"):
            value = getattr(q, col)
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if q.since is not None:
            where.append("time >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("time < ?")
            args.append(q.until)
        sql = (f"SELECT seq, event FROM events WHERE {' AND '.join(where)} "
               f"ORDER BY seq LIMIT ?")
        with self.cursor() as cur:
            rows = cur.execute(sql, [*args, q.limit]).fetchall()
        return [(seq, json.loads(event)) for seq, event in rows]

    def count_events(self) -> int:
        with self.cursor() as cur:
            return cur.execute("SELECT count(*) FROM events").fetchone()[0]
