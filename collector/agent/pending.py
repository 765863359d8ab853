"""Records waiting for their window's profile, and the profile specs, on the agent's disk.

In profile mode the intake's 200 still means "on disk": records to be profiled are
committed here (in the spool file, tables of their own) grouped by (model, version,
site, window), and deleted only after their window's profile was committed to the
spool. A crash in between rebuilds the same profile from the same rows after the
restart (same rows, same order, same seed: the same id, deduplicated downstream).
Profile specs fetched from the API are kept here too, so the agent profiles offline
after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.agent.spool import write_tx
from steward.errors import ConfigError, Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS profile_rows (
  id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL,
  site TEXT NOT NULL, start INTEGER NOT NULL, max_ts REAL NOT NULL, records INTEGER NOT NULL,
  bytes INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS profile_rows_by_window ON profile_rows (model, version, site, start, id);
CREATE TABLE IF NOT EXISTS profile_specs (
  model TEXT NOT NULL, version TEXT NOT NULL, body TEXT NOT NULL, fetched_at REAL NOT NULL,
  PRIMARY KEY (model, version));
"""


@dataclass(frozen=True)
class WindowKey:
    """One profile's worth of rows: a (model, version, site) and its window's start."""

    model: str
    version: str
    site: str
    start: int
    """Window start, seconds since the epoch (a multiple of the window size)."""


@dataclass(frozen=True)
class Group:
    """Records of one window, to be committed together with other groups."""

    key: WindowKey
    records: list[dict[str, Any]]
    max_ts: float


@dataclass(frozen=True)
class OpenWindow:
    key: WindowKey
    max_ts: float
    records: int
    last_id: int


class PendingFull(Unavailable):
    """Too many records wait for their windows to close; the local client retries later."""


class Pending:
    """Its own connection to the spool file (WAL, fsync on commit); thread-safe."""

    def __init__(self, path: Path, max_bytes: int, retry_after_s: float = 5.0) -> None:
        self.max_bytes = max_bytes
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot use {path} for pending profile rows: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_tx(self._db, self._lock)

    def add(self, groups: Sequence[Group]) -> None:
        """Commit every group in one transaction, or none (`PendingFull`, `Unavailable`)."""
        bodies = [json.dumps(g.records, separators=(",", ":")).encode() for g in groups]
        try:
            with self._tx() as db:
                (waiting,) = db.execute(
                    "SELECT COALESCE(SUM(bytes), 0) FROM profile_rows").fetchone()
                if waiting + sum(map(len, bodies)) > self.max_bytes:
                    raise PendingFull(f"{waiting} bytes of records wait for their profile "
                                      f"windows to close (limit {self.max_bytes}); retry "
                                      "later", retry_after=self.retry_after_s)
                db.executemany(
                    "INSERT INTO profile_rows (model, version, site, start, max_ts, records, "
                    "bytes, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(g.key.model, g.key.version, g.key.site, g.key.start, g.max_ts,
                      len(g.records), len(b), b) for g, b in zip(groups, bodies, strict=True)])
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"the spool cannot be written: {exc}",
                              retry_after=self.retry_after_s) from exc

    def windows(self) -> list[OpenWindow]:
        """Every window with rows waiting, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT model, version, site, start, MAX(max_ts), SUM(records), MAX(id) "
                "FROM profile_rows GROUP BY model, version, site, start "
                "ORDER BY start, MIN(id)").fetchall()
        return [OpenWindow(WindowKey(m, v, s, start), ts, n, last)
                for m, v, s, start, ts, n, last in rows]

    def records(self, key: WindowKey, through_id: int) -> Iterator[dict[str, Any]]:
        """The window's records in arrival order, up to row `through_id`."""
        last = 0
        while True:
            with self._lock:
                batch = self._db.execute(
                    "SELECT id, body FROM profile_rows WHERE model = ? AND version = ? AND "
                    "site = ? AND start = ? AND id > ? AND id <= ? ORDER BY id LIMIT 64",
                    (key.model, key.version, key.site, key.start, last, through_id)).fetchall()
            if not batch:
                return
            for row_id, body in batch:
                last = row_id
                yield from json.loads(body)

    def delete(self, key: WindowKey, through_id: int) -> int:
        """Forget the window's rows up to `through_id` (rows that came later stay)."""
        with self._tx() as db:
            return db.execute(
                "DELETE FROM profile_rows WHERE model = ? AND version = ? AND site = ? AND "
                "start = ? AND id <= ?",
                (key.model, key.version, key.site, key.start, through_id)).rowcount

    def totals(self) -> tuple[int, int]:
        """(records, bytes) waiting."""
        with self._lock:
            return self._db.execute("SELECT COALESCE(SUM(records), 0), COALESCE(SUM(bytes), 0) "
                                    "FROM profile_rows").fetchone()

    def specs(self) -> dict[tuple[str, str], tuple[str, float]]:
        """Every cached spec: (model, version) -> (its JSON, when it was fetched)."""
        with self._lock:
            rows = self._db.execute("SELECT model, version, body, fetched_at "
                                    "FROM profile_specs").fetchall()
        return {(m, v): (body, at) for m, v, body, at in rows}

    def put_spec(self, model: str, version: str, body: str, fetched_at: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO profile_specs VALUES (?, ?, ?, ?)",
                       (model, version, body, fetched_at))
