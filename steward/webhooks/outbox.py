"""The delivery outbox: one SQLite row per (event, subscription), the service's own file.

Why SQLite and not the store: DuckDB allows one writer per file and the API owns it.
WAL with `synchronous=FULL` makes a committed enqueue survive a crash, and the sink
enqueues before the runner commits the Kafka offsets, so an event is either in the
outbox or will be consumed again. The row id is the `webhook-id`, so a redelivered
Kafka batch adds nothing (INSERT OR IGNORE).

Row states: `pending` (due at `next_attempt_at`), `done` (2xx), `parked` (its endpoint
answered 410 and is disabled; released when the subscription is enabled again), `dead`
(attempts or age exhausted: kept for `steward webhooks list-dead` and `replay`). Done
rows are kept for a retention period and then pruned.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from collector.agent.spool import write_tx
from steward.errors import Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
  id TEXT PRIMARY KEY, subscription_id TEXT NOT NULL, event_id TEXT NOT NULL,
  event_type TEXT NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL,
  state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
  next_attempt_at REAL NOT NULL, last_attempt_at REAL, last_status INTEGER,
  last_error TEXT, finished_at REAL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_sub ON deliveries (subscription_id, state);
CREATE TABLE IF NOT EXISTS gone (
  subscription_id TEXT PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL,
  reported_revision INTEGER);
"""
_COLS = ("id, subscription_id, event_id, event_type, content_type, body, state, attempts, "
         "created_at, next_attempt_at, last_status, last_error, finished_at")


@dataclass(frozen=True)
class NewDelivery:
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Delivery(NewDelivery):
    """A queued delivery with its progress."""

    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    last_status: int | None
    last_error: str | None
    finished_at: float | None


@dataclass(frozen=True)
class Gone:
    """A subscription whose endpoint answered 410; `reported_revision` is the API's
    revision after it was disabled there (None: not told yet)."""

    subscription_id: str
    reason: str
    at: float
    reported_revision: int | None


@dataclass(frozen=True)
class Stats:
    by_state: dict[str, int]
    oldest_pending_created_at: float | None


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    return db


class Outbox:
    """One connection, thread-safe; the CLI may open the same file from another process."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._db = _connect(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: Iterable[object] = ()) -> int:
        with write_tx(self._db, self._lock) as db:
            return db.execute(sql, tuple(args)).rowcount

    def _read(self, sql: str, args: Iterable[object] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def enqueue(self, rows: list[NewDelivery]) -> int:
        """Queue deliveries in one transaction (due now); known ids are skipped. Raises
        `Unavailable` if the disk refused, with nothing written."""
        if not rows:
            return 0
        now = self.clock()
        try:
            with write_tx(self._db, self._lock) as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO deliveries (id, subscription_id, event_id, "
                    "event_type, content_type, body, state, created_at, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    [(r.id, r.subscription_id, r.event_id, r.event_type, r.content_type,
                      r.body, now, now) for r in rows])
                return db.total_changes - before
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"the webhook outbox cannot be written: {exc}") from exc

    def due(self, limit: int) -> list[Delivery]:
        rows = self._read(f"SELECT {_COLS} FROM deliveries WHERE state = 'pending' AND "
                          "next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
                          (self.clock(), limit))
        return [Delivery(*r) for r in rows]

    def next_due_at(self) -> float | None:
        (at,) = self._read("SELECT min(next_attempt_at) FROM deliveries "
                           "WHERE state = 'pending'")[0]
        return at

    def get(self, delivery_id: str) -> Delivery | None:
        rows = self._read(f"SELECT {_COLS} FROM deliveries WHERE id = ?", (delivery_id,))
        return Delivery(*rows[0]) if rows else None

    def finish(self, delivery_id: str, state: str, status: int | None,
               error: str | None) -> None:
        """An attempt that ends the row's life for now: done, or dead."""
        now = self.clock()
        self._write("UPDATE deliveries SET state = ?, attempts = attempts + 1, "
                    "last_attempt_at = ?, last_status = ?, last_error = ?, finished_at = ? "
                    "WHERE id = ?", (state, now, status, error, now, delivery_id))

    def retry(self, delivery_id: str, at: float, status: int | None, error: str | None) -> None:
        self._write("UPDATE deliveries SET attempts = attempts + 1, last_attempt_at = ?, "
                    "last_status = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                    (self.clock(), status, error, at, delivery_id))

    def mark_gone(self, subscription_id: str, reason: str) -> int:
        """Remember a 410 and park the subscription's pending rows; returns rows parked."""
        with write_tx(self._db, self._lock) as db:
            db.execute("INSERT OR REPLACE INTO gone VALUES (?, ?, ?, NULL)",
                       (subscription_id, reason, self.clock()))
            return db.execute("UPDATE deliveries SET state = 'parked' WHERE "
                              "subscription_id = ? AND state = 'pending'",
                              (subscription_id,)).rowcount

    def park(self, subscription_id: str) -> int:
        return self._write("UPDATE deliveries SET state = 'parked' WHERE subscription_id = ? "
                           "AND state = 'pending'", (subscription_id,))

    def parked_subscriptions(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT subscription_id FROM deliveries "
                                         "WHERE state = 'parked'")]

    def gone(self) -> dict[str, Gone]:
        return {r[0]: Gone(*r) for r in self._read("SELECT * FROM gone")}

    def reported(self, subscription_id: str, revision: int) -> None:
        self._write("UPDATE gone SET reported_revision = ? WHERE subscription_id = ?",
                    (revision, subscription_id))

    def release(self, subscription_id: str) -> int:
        """The subscription is active again: its parked rows are due now."""
        with write_tx(self._db, self._lock) as db:
            db.execute("DELETE FROM gone WHERE subscription_id = ?", (subscription_id,))
            return db.execute("UPDATE deliveries SET state = 'pending', next_attempt_at = ? "
                              "WHERE subscription_id = ? AND state = 'parked'",
                              (self.clock(), subscription_id)).rowcount

    def list_dead(self, subscription_id: str | None = None, since: float | None = None,
                  limit: int = 1000) -> list[Delivery]:
        where, args = self._dead_filter(subscription_id, since)
        rows = self._read(f"SELECT {_COLS} FROM deliveries WHERE {where} "
                          "ORDER BY finished_at LIMIT ?", (*args, limit))
        return [Delivery(*r) for r in rows]

    def replay(self, subscription_id: str | None = None, since: float | None = None) -> int:
        """Dead rows back to pending, due now, with a fresh attempt budget."""
        where, args = self._dead_filter(subscription_id, since)
        now = self.clock()
        return self._write(f"UPDATE deliveries SET state = 'pending', attempts = 0, "
                           f"created_at = ?, next_attempt_at = ?, finished_at = NULL "
                           f"WHERE {where}", (now, now, *args))

    @staticmethod
    def _dead_filter(subscription_id: str | None, since: float | None
                     ) -> tuple[str, list[object]]:
        where, args = ["state = 'dead'"], []
        if subscription_id is not None:
            where.append("subscription_id = ?")
            args.append(subscription_id)
        if since is not None:
            where.append("finished_at >= ?")
            args.append(since)
        return " AND ".join(where), args

    def stats(self) -> Stats:
        counts = dict(self._read("SELECT state, count(*) FROM deliveries GROUP BY state"))
        (oldest,) = self._read("SELECT min(created_at) FROM deliveries "
                               "WHERE state = 'pending'")[0]
        return Stats({s: counts.get(s, 0) for s in ("pending", "parked", "dead", "done")},
                     oldest)

    def prune(self, before: float) -> int:
        """Forget delivered rows finished before `before` (their ids no longer dedup)."""
        return self._write("DELETE FROM deliveries WHERE state = 'done' AND finished_at < ?",
                           (before,))
