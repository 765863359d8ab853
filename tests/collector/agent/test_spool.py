"""The spool on real SQLite files: order, bounds with exact counts, durability, the dead table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from collector.agent.spool import (
    DirLock,
    Dropped,
    Spool,
    SpoolFull,
    prepare_dir,
)
from steward.errors import ConfigError, PayloadTooLarge

JSON = "application/json"


def body(n: int, size: int = 100) -> bytes:
    return f"{n:06d}".encode().ljust(size, b".")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "spool.sqlite3"


def test_append_head_read_delete_in_order(path: Path):
    spool = Spool(path, max_bytes=10_000, clock=lambda: 1000.0)
    for i in range(3):
        spool.append("inferences", JSON, body(i), records=2)
    spool.append("metrics", "application/x-protobuf", body(3), records=5)
    spool.append("inferences", JSON, body(4), records=2)

    assert spool.head(["inferences", "metrics"]) == (1, "inferences")
    assert spool.head(["metrics", "traces"]) == (4, "metrics")
    assert spool.head(["logs"]) is None
    entries = spool.read("inferences", 1, max_entries=10, max_bytes=10_000, max_records=100)
    assert [e.id for e in entries] == [1, 2, 3, 5]  # the metrics entry waits for its own request
    assert entries[0].body == body(0) and entries[0].created_at == 1000.0
    assert entries[0].records == 2 and entries[0].bytes == 100

    assert spool.delete([1, 2]) == 2
    assert spool.delete([1]) == 0  # already gone: nothing happens
    assert spool.head(["inferences", "metrics"]) == (3, "inferences")
    t = spool.totals()
    assert (t.entries, t.bytes, t.records, t.oldest_created_at) == (3, 300, 9, 1000.0)


def test_read_stops_at_byte_and_record_limits_but_never_returns_nothing(path: Path):
    spool = Spool(path, max_bytes=100_000)
    for i in range(5):
        spool.append("inferences", JSON, body(i, 1000), records=10)
    read = lambda **kw: [e.id for e in spool.read("inferences", 1, **kw)]  # noqa: E731
    assert read(max_entries=10, max_bytes=2500, max_records=100) == [1, 2]
    assert read(max_entries=10, max_bytes=100_000, max_records=30) == [1, 2, 3]
    assert read(max_entries=4, max_bytes=100_000, max_records=100) == [1, 2, 3, 4]
    assert read(max_entries=10, max_bytes=10, max_records=1) == [1]  # too big: alone


def test_drop_oldest_makes_exact_room_and_reports_what_it_dropped(path: Path):
    spool = Spool(path, max_bytes=1000, policy="drop-oldest")
    for i in range(10):
        assert spool.append("metrics" if i % 2 else "inferences", JSON, body(i), 3) == []
    dropped = spool.append("inferences", JSON, body(10, 250), records=7)
    # 1000 bytes held; 250 more need 250 freed: the three oldest go (inferences, metrics, inf.)
    assert sorted(dropped, key=lambda d: d.signal) == [Dropped("inferences", 2, 6),
                                                       Dropped("metrics", 1, 3)]
    t = spool.totals()
    assert (t.entries, t.bytes, t.records) == (8, 950, 28) and spool.records() == 28
    assert spool.head(["inferences", "metrics"]) == (4, "metrics")


def test_refuse_newest_refuses_and_keeps_everything(path: Path):
    spool = Spool(path, max_bytes=1000, policy="refuse-newest", retry_after_s=7)
    for i in range(10):
        spool.append("inferences", JSON, body(i), 1)
    with pytest.raises(SpoolFull) as err:
        spool.append("inferences", JSON, body(10), 1)
    assert err.value.status == 503 and err.value.retry_after == 7
    t = spool.totals()
    assert (t.entries, t.bytes) == (10, 1000)
    spool.delete([1])
    assert spool.append("inferences", JSON, body(11), 1) == []  # room again


def test_an_entry_larger_than_the_spool_is_refused_under_either_policy(path: Path):
    for policy in ("drop-oldest", "refuse-newest"):
        spool = Spool(path, max_bytes=1000, policy=policy)
        with pytest.raises(PayloadTooLarge):
            spool.append("inferences", JSON, body(0, 1001), 1)
        spool.close()
    assert Spool(path, 1000).totals().entries == 0


def test_reopening_the_file_keeps_entries_ids_and_totals(path: Path):
    spool = Spool(path, max_bytes=10_000)
    for i in range(4):
        spool.append("inferences", JSON, body(i), 2)
    spool.delete([1])
    spool.close()

    again = Spool(path, max_bytes=10_000)
    assert again.head(["inferences"]) == (2, "inferences")
    t = again.totals()
    assert (t.entries, t.bytes, t.records) == (3, 300, 6)
    again.append("inferences", JSON, body(9), 2)
    assert again.read("inferences", 2, 10, 10_000, 100)[-1].id == 5  # AUTOINCREMENT: no reuse
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_two_connections_see_each_others_commits(path: Path):
    intake, forwarder = Spool(path, 10_000), Spool(path, 10_000)
    intake.append("inferences", JSON, body(0), 1)
    assert forwarder.head(["inferences"]) == (1, "inferences")
    forwarder.delete([1])
    assert intake.totals().entries == 0


def test_bury_moves_an_entry_to_the_dead_table_with_its_reason(path: Path):
    spool = Spool(path, max_bytes=10_000, clock=lambda: 5.0)
    spool.append("inferences", JSON, body(0), 3)
    spool.append("inferences", JSON, body(1), 3)
    assert spool.bury(1, "HTTP 400: no record in the batch is valid") == (True, [])
    assert spool.bury(1, "again") == (False, [])  # gone already: nothing happens
    [dead] = spool.dead_entries()
    assert (dead.id, dead.signal, dead.records, dead.died_at) == (1, "inferences", 3, 5.0)
    assert "no record" in dead.reason
    t = spool.totals()
    assert (t.entries, t.bytes, t.dead_entries, t.dead_bytes) == (1, 100, 1, 100)


def test_dead_table_keeps_within_its_cap_oldest_out(path: Path):
    spool = Spool(path, max_bytes=10_000, max_dead_bytes=250)
    for i in range(4):
        spool.append("logs", JSON, body(i), 2)
    assert spool.bury(1, "x") == (True, []) and spool.bury(2, "x") == (True, [])
    assert spool.bury(3, "x") == (True, [Dropped("logs", 1, 2)])
    assert [d.id for d in spool.dead_entries()] == [2, 3]


def test_spool_dir_must_be_a_directory(tmp_path: Path):
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        prepare_dir(not_dir)
    assert prepare_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" / "spool.sqlite3"


def test_a_file_that_is_not_sqlite_is_a_clear_error(path: Path):
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match=r"cannot use .* as the spool"):
        Spool(path, 10_000)


def test_one_agent_per_spool_dir(tmp_path: Path):
    lock = DirLock(tmp_path)
    with pytest.raises(ConfigError, match="in use by another agent"):
        DirLock(tmp_path)
    lock.release()
    DirLock(tmp_path).release()


def test_the_file_shrinks_once_a_backlog_is_forwarded(tmp_path):
    from collector.agent.spool import Spool

    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=10**9)
    body = b"x" * 100_000
    for _ in range(80):                        # ~8 MB of backlog
        spool.append("inferences", "application/json", body, 1)
    path = tmp_path / "spool.sqlite3"
    big = path.stat().st_size + (tmp_path / "spool.sqlite3-wal").stat().st_size
    entries = spool.read("inferences", 0, 1000, 10**9, 10**9)
    assert spool.delete([e.id for e in entries]) == 80
    spool.close()                              # checkpoints the WAL into the file
    assert path.stat().st_size < big / 4
