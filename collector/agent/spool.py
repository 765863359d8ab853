"""The durable spool: an append-only SQLite table the forwarder drains oldest first.

WAL mode with `synchronous=FULL` makes every committed append survive a power cut,
so the intake's 200 means "on disk". Rows are deleted only after the collector
acknowledged them, which turns a crash at any point into, at worst, a duplicate
upstream. The size bound is on payload bytes (kept in a `totals` row by triggers,
so it is exact across connections and restarts) and is enforced in the same
transaction as the insert, by one of two explicit policies: drop the oldest entries
(reported to the caller, who counts and logs them) or refuse the new one (503).

Entries the collector refused for good (400, or 413 alone) move to a `dead` table
with the reason: kept for an operator, never retried, bounded by their own cap.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from collector.agent.settings import FullPolicy
from steward.errors import ConfigError, PayloadTooLarge, Unavailable

DB_FILE = "spool.sqlite3"
LOCK_FILE = "agent.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  signal TEXT NOT NULL, content_type TEXT NOT NULL, records INTEGER NOT NULL,
  bytes INTEGER NOT NULL, created_at REAL NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_signal ON entries (signal, id);
CREATE TABLE IF NOT EXISTS dead (
  id INTEGER PRIMARY KEY, signal TEXT NOT NULL, content_type TEXT NOT NULL,
  records INTEGER NOT NULL, bytes INTEGER NOT NULL, created_at REAL NOT NULL,
  died_at REAL NOT NULL, reason TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS totals (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  entries INTEGER NOT NULL, bytes INTEGER NOT NULL, records INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0, 0);
CREATE TRIGGER IF NOT EXISTS entries_added AFTER INSERT ON entries BEGIN
  UPDATE totals SET entries = entries + 1, bytes = bytes + new.bytes,
                    records = records + new.records;
END;
CREATE TRIGGER IF NOT EXISTS entries_removed AFTER DELETE ON entries BEGIN
  UPDATE totals SET entries = entries - 1, bytes = bytes - old.bytes,
                    records = records - old.records;
END;
"""
_COLUMNS = "id, signal, content_type, records, bytes, created_at, body"


@contextmanager
def write_tx(db: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One write transaction under `lock`, taken up front (IMMEDIATE) so it cannot
    deadlock later; rolled back on any error. Shared by the agent's SQLite files."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class SpoolFull(Unavailable):
    """The spool is full and its policy is refuse-newest: the local client retries later."""


@dataclass(frozen=True)
class Entry:
    """One accepted request, as stored: `body` is in `content_type`, holding `records` items."""

    id: int
    signal: str
    content_type: str
    records: int
    bytes: int
    created_at: float
    body: bytes


@dataclass(frozen=True)
class Dropped:
    """Entries of one signal removed to make room (or pruned from the dead table)."""

    signal: str
    entries: int
    records: int


@dataclass(frozen=True)
class Totals:
    entries: int
    bytes: int
    records: int
    oldest_created_at: float | None
    dead_entries: int
    dead_bytes: int


@dataclass(frozen=True)
class DeadEntry:
    id: int
    signal: str
    records: int
    reason: str
    died_at: float


def prepare_dir(spool_dir: Path) -> Path:
    """The spool file's path; the directory is created if missing, refused if not one."""
    if spool_dir.exists() and not spool_dir.is_dir():
        raise ConfigError(f"spool dir {spool_dir} exists and is not a directory")
    try:
        spool_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create spool dir {spool_dir}: {exc.strerror}") from None
    if not os.access(spool_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"spool dir {spool_dir} is not writable")
    return spool_dir / DB_FILE


class DirLock:
    """An exclusive lock on a spool dir, so two agents never drain one spool.

    A `flock` on a lock file beside the database (never on the database itself: closing
    any descriptor of a file drops SQLite's own POSIX locks). The kernel releases it
    when the process dies, kill -9 included, so no stale lock survives a crash.
    """

    def __init__(self, spool_dir: Path) -> None:
        self.path = spool_dir / LOCK_FILE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise ConfigError(f"spool dir {spool_dir} is in use by another agent "
                              f"(pid {owner or '?'})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


class Spool:
    """One connection to the spool file; thread-safe. The intake and the forwarder each
    open their own, so a long read never holds up an append beyond SQLite's own lock."""

    def __init__(self, path: Path, max_bytes: int, policy: FullPolicy = "drop-oldest", *,
                 max_dead_bytes: int = 64 * 1024 ** 2, retry_after_s: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.policy = policy
        self.max_dead_bytes = max_dead_bytes
        self.retry_after_s = retry_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._db = _connect(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_tx(self._db, self._lock)

    def append(self, signal: str, content_type: str, body: bytes, records: int) -> list[Dropped]:
        """Store one entry durably; what the policy dropped to make room comes back.

        Raises `SpoolFull` (refuse-newest), `PayloadTooLarge` (an entry that could
        never fit) or `Unavailable` (the disk refused); in each case nothing was written.
        """
        size = len(body)
        if size > self.max_bytes:
            raise PayloadTooLarge(f"an entry of {size} bytes can never fit in a spool "
                                  f"of {self.max_bytes} bytes")
        try:
            with self._tx() as db:
                dropped = self._make_room(db, size)
                db.execute(f"INSERT INTO entries ({_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?)",
                           (signal, content_type, records, size, self.clock(), body))
        except sqlite3.OperationalError as exc:  # disk full, locked past the timeout, I/O
            raise Unavailable(f"the spool cannot be written: {exc}",
                              retry_after=self.retry_after_s) from exc
        return dropped

    def _make_room(self, db: sqlite3.Connection, size: int) -> list[Dropped]:
        excess = db.execute("SELECT bytes FROM totals").fetchone()[0] + size - self.max_bytes
        if excess <= 0:
            return []
        if self.policy == "refuse-newest":
            raise SpoolFull(f"the spool is full ({self.max_bytes} bytes waiting to be "
                            "forwarded); retry later", retry_after=self.retry_after_s)
        victims, freed = [], 0
        for row in db.execute("SELECT id, signal, records, bytes FROM entries ORDER BY id"):
            victims.append(row)
            freed += row[3]
            if freed >= excess:
                break
        db.execute("DELETE FROM entries WHERE id <= ?", (victims[-1][0],))
        return _tally((signal, records) for _, signal, records, _ in victims)

    def head(self, signals: Collection[str], skip: Collection[int] = ()) -> tuple[int, str] | None:
        """(id, signal) of the oldest entry among `signals`, ids in `skip` left out, or
        None: one indexed look-up per signal, however long the spool."""
        not_in, params = _not_in(skip)
        with self._lock:
            firsts = [(self._db.execute(f"SELECT MIN(id) FROM entries WHERE signal = ?{not_in}",
                                        (s, *params)).fetchone()[0], s) for s in signals]
        return min(((i, s) for i, s in firsts if i is not None), default=None)

    def read(self, signal: str, from_id: int, max_entries: int, max_bytes: int,
             max_records: int, skip: Collection[int] = ()) -> list[Entry]:
        """Consecutive entries of `signal` from `from_id` within the limits (ids in `skip`
        left out); never empty when `from_id` exists (a first entry over the limits comes
        alone)."""
        out: list[Entry] = []
        size = records = 0
        not_in, params = _not_in(skip)
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM entries WHERE signal = ? AND "
                                    f"id >= ?{not_in} ORDER BY id LIMIT ?",
                                    (signal, from_id, *params, max_entries))
            for row in rows:
                entry = Entry(*row)
                full = size + entry.bytes > max_bytes or records + entry.records > max_records
                if out and full:
                    break
                out.append(entry)
                size, records = size + entry.bytes, records + entry.records
        return out

    def delete(self, ids: Collection[int]) -> int:
        """Remove acknowledged entries; ids already gone (dropped meanwhile) are skipped."""
        removed, ids = 0, list(ids)
        with self._tx() as db:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                removed += db.execute(f"DELETE FROM entries WHERE id IN ({marks})", chunk).rowcount
        with self._lock:
            _reclaim(self._db)
        return removed

    def bury(self, entry_id: int, reason: str) -> tuple[bool, list[Dropped]]:
        """Move an entry to the dead table with `reason`. Returns whether it was still
        there to move, and the oldest dead entries pruned to keep the table in bounds."""
        with self._tx() as db:
            moved = db.execute(
                "INSERT INTO dead (id, signal, content_type, records, bytes, created_at, "
                "died_at, reason, body) SELECT id, signal, content_type, records, bytes, "
                "created_at, ?, ?, body FROM entries WHERE id = ?",
                (self.clock(), reason[:4000], entry_id)).rowcount
            db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            return bool(moved), self._prune_dead(db) if moved else []

    def _prune_dead(self, db: sqlite3.Connection) -> list[Dropped]:
        """Oldest dead entries out until the table fits; the newest always stays."""
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM dead").fetchone()
        excess = size - self.max_dead_bytes
        victims, freed = [], 0
        for row in db.execute("SELECT id, signal, records, bytes FROM dead ORDER BY id"):
            if freed >= excess or len(victims) + 1 >= count:
                break
            victims.append(row)
            freed += row[3]
        if victims:
            db.execute("DELETE FROM dead WHERE id <= ?", (victims[-1][0],))
        return _tally((signal, records) for _, signal, records, _ in victims)

    def records(self) -> int:
        """Records waiting to be forwarded: one read of the trigger-kept totals row, cheap
        enough for every accepted request (the intake stamps it as `agent_backlog`)."""
        with self._lock:
            return self._db.execute("SELECT records FROM totals").fetchone()[0]

    def totals(self) -> Totals:
        with self._lock:
            entries, size, records = self._db.execute(
                "SELECT entries, bytes, records FROM totals").fetchone()
            oldest = self._db.execute(
                "SELECT created_at FROM entries ORDER BY id LIMIT 1").fetchone()
            dead, dead_bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM dead").fetchone()
        return Totals(entries, size, records, oldest[0] if oldest else None, dead, dead_bytes)

    def dead_entries(self) -> list[DeadEntry]:
        with self._lock:
            rows = self._db.execute("SELECT id, signal, records, reason, died_at FROM dead "
                                    "ORDER BY id").fetchall()
        return [DeadEntry(*row) for row in rows]

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1 FROM totals").fetchone()
        except sqlite3.Error:
            return False
        return True


def _connect(path: Path) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit), WAL, fsync on every commit."""
    try:
        db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file only
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot use {path} as the spool: {exc}") from None
    return db


def _reclaim(db: sqlite3.Connection, above_pages: int = 256) -> None:
    """Give free pages back to the file system, so the spool file shrinks after an outage
    drains instead of keeping its largest size forever."""
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    if free > above_pages:  # executescript steps the pragma to the end (execute frees a page)
        db.executescript("PRAGMA incremental_vacuum;")


def _not_in(ids: Collection[int]) -> tuple[str, list[int]]:
    """An `AND id NOT IN (...)` clause and its parameters ('' when there is nothing to skip)."""
    ids = list(ids)
    return (f" AND id NOT IN ({','.join('?' * len(ids))})" if ids else "", ids)


def _tally(items: Iterable[tuple[str, int]]) -> list[Dropped]:
    entries: Counter[str] = Counter()
    records: Counter[str] = Counter()
    for signal, n in items:
        entries[signal] += 1
        records[signal] += n
    return [Dropped(s, entries[s], records[s]) for s in entries]
