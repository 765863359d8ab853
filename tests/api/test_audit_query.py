"""Read-only SQL over the audit tables: one SELECT over decisions, events and
drift_verdicts, nothing else; refused with 400 and the reason, on a real store."""

from __future__ import annotations

import json

import duckdb
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from api import audit_sql
from api.app import create_app
from api.store import Store
from steward.audit_cli import audit_app
from tests.api.test_decision_chain import decision, src


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "steward.duckdb")
    yield s
    s.close()


@pytest.fixture
def client(store):
    app = create_app(store, CollectorRegistry(), {})
    app.state.decisions.insert([(decision(i, allowed=i != 2), src(i)) for i in (1, 2, 3)])
    audit_sql.lock_down(store)
    return TestClient(app)


def ask(client: TestClient, sql: str, **params):
    return client.post("/audit/query", json={"sql": sql}, params=params)


def test_a_select_over_the_audit_tables_answers_with_rows(client):
    resp = ask(client, "WITH d AS (SELECT * FROM decisions) SELECT seq, decision_id, "
                       "decision->>'$.reasons[0]' AS why FROM d WHERE NOT allowed "
                       "UNION ALL SELECT count(*), 'events', NULL FROM main.events "
                       "UNION ALL SELECT count(*), 'verdicts', NULL FROM drift_verdicts;")
    assert resp.status_code == 200
    assert resp.json() == {"columns": ["seq", "decision_id", "why"],
                           "rows": [[2, "d2", "no"], [0, "events", None],
                                    [0, "verdicts", None]],
                           "truncated": False, "row_limit": 1000}
    cut = ask(client, "SELECT seq FROM decisions ORDER BY seq DESC", limit=2).json()
    assert cut["rows"] == [[3], [2]] and cut["truncated"] is True


REFUSED = {
    "INSERT INTO decisions (seq) VALUES (9)": "only SELECT is allowed, not INSERT",
    "UPDATE decisions SET allowed = true": "only SELECT is allowed, not UPDATE",
    "DELETE FROM decisions": "only SELECT is allowed, not DELETE",
    "DROP TABLE decisions": "only SELECT is allowed, not DROP",
    "CREATE TABLE x AS SELECT * FROM decisions": "only SELECT is allowed, not CREATE",
    "SELECT 1; DELETE FROM decisions": "exactly one statement is allowed, got 2",
    "SELECT 1; SELECT 2": "exactly one statement is allowed, got 2",
    "ATTACH '/tmp/other.duckdb' AS other": "only SELECT is allowed, not ATTACH",
    "COPY decisions TO '/tmp/out.csv'": "only SELECT is allowed, not COPY",
    "SET enable_external_access = true": "only SELECT is allowed, not SET",
    "PRAGMA database_list": "only SELECT is allowed, not PRAGMA",
    "SELECT * FROM inferences": "table 'inferences' is not an audit table "
                                "(decisions, events, drift_verdicts)",
    "SELECT * FROM information_schema.tables": "table 'information_schema.tables' is not "
                                               "an audit table (decisions, events, "
                                               "drift_verdicts)",
    "SELECT * FROM (WITH inferences AS (SELECT 1) SELECT 1), inferences":
        "table 'inferences' is not an audit table (decisions, events, drift_verdicts)",
    "SELECT * FROM read_csv('/etc/passwd')": "table function read_csv() is not allowed: "
                                             "only the audit tables may be read",
    "SELECT * FROM decisions, read_parquet('x.parquet')": "table function read_parquet() is "
                                                         "not allowed: only the audit tables "
                                                         "may be read",
    "SELECT (SELECT count(*) FROM glob('/*'))": "table function glob() is not allowed: only "
                                                "the audit tables may be read",
    "SELECT * FROM read_text('/etc/hosts')": "table function read_text() is not allowed: "
                                             "only the audit tables may be read",
    "SELECT * FROM '/etc/passwd'": "table '/etc/passwd' is not an audit table "
                                   "(decisions, events, drift_verdicts)",
    "SELECT * FROM duckdb_tables()": "table function duckdb_tables() is not allowed: only "
                                     "the audit tables may be read",
    "DESCRIBE decisions": "show_ref is not allowed: only SELECT over the audit tables",
    "SELECT current_setting('threads')": "function current_setting() is not allowed",
}


@pytest.mark.parametrize("sql", list(REFUSED))
def test_anything_but_one_select_over_audit_tables_is_refused(client, sql):
    resp = ask(client, sql)
    assert resp.status_code == 400
    assert resp.json() == {"detail": REFUSED[sql], "code": "query_refused"}
    assert ask(client, "SELECT count(*) FROM decisions").json()["rows"] == [[3]]


def test_the_locked_store_reads_no_files_even_past_the_check_and_still_writes(client, store):
    with store.cursor() as cur, pytest.raises(duckdb.PermissionException):
        cur.execute("SELECT * FROM read_csv('/etc/passwd')")
    client.app.state.decisions.insert([(decision(4), src(4))])
    assert client.get("/audit/verify").json()["checked"] == 4


def test_a_query_past_its_timeout_is_stopped(store):
    slow = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
            "WHERE n < 100000000000) SELECT count(*) FROM r")
    with store.cursor() as cur, pytest.raises(audit_sql.QueryTimeout) as err:
        audit_sql.run(cur, slow, timeout_s=0.3)
    assert (err.value.status, err.value.reason) == (408, "query ran longer than 0.3 s and "
                                                         "was stopped")


def test_the_cli_queries_a_stopped_stores_file(tmp_path):
    path = tmp_path / "steward.duckdb"
    store = Store(path)
    create_app(store, CollectorRegistry(), {}).state.decisions.insert(
        [(decision(i), src(i)) for i in (1, 2)])
    store.close()
    ok = CliRunner().invoke(audit_app, ["query", "SELECT seq, decision_id FROM decisions "
                                                 "ORDER BY seq", "--db", str(path)])
    assert ok.exit_code == 0
    assert [json.loads(line) for line in ok.stdout.splitlines()] == [
        {"seq": 1, "decision_id": "d1"}, {"seq": 2, "decision_id": "d2"}]
    refused = CliRunner().invoke(audit_app, ["query", "SELECT * FROM read_csv('/etc/passwd')",
                                             "--db", str(path)])
    assert refused.exit_code == 2
    assert refused.stderr == ("refused: table function read_csv() is not allowed: only the "
                              "audit tables may be read\n")
