"""Read-only SQL over the audit tables, for auditors (POST /audit/query, `steward audit
query`).

Ad-hoc questions ("every denied retrain at factory-berlin last week, by revision") are
SQL questions, but the store is also the API's live database, so a query must neither
write, nor read anything but the audit tables, nor reach the file system, nor run
forever. The checks use DuckDB's own parser, never string matching:

1. `duckdb.extract_statements`: exactly one statement, of type SELECT (so no INSERT,
   UPDATE, DELETE, CREATE, ATTACH, COPY, SET, PRAGMA, EXPORT, CALL, ...);
2. its syntax tree (`json_serialize_sql`): every table reference is one of the audit
   tables (or a CTE of the query), and no other kind of reference appears: no table
   functions (`read_csv`, `read_parquet`, `glob`, `query`, `duckdb_tables`, ...), no
   file paths or replacement scans (`FROM 'x.csv'`), no DESCRIBE/SHOW; settings
   functions are refused too;
3. it runs wrapped in `LIMIT row_limit + 1` (so the answer says whether it was cut) and
   is interrupted after `timeout_s`.

Underneath, the API process turns DuckDB's external access off (`lock_down`), which the
store never needs (it loads rows from registered data frames), and the CLI opens the file
read-only with external access off: a reference the tree walk missed still cannot read a
file.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import duckdb

from api.store import Store
from steward.errors import InvalidInput

AUDIT_TABLES = ("decisions", "events", "drift_verdicts")
_PASS_REFS = frozenset({"JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST"})
_DENIED_FUNCTIONS = frozenset({"current_setting", "getvariable"})
MAX_SQL = 20_000


class QueryRefused(InvalidInput):
    code = "query_refused"


class QueryTimeout(InvalidInput):
    status = 408
    code = "query_timeout"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    row_limit: int


def lock_down(store: Store) -> None:
    """Turn off DuckDB's file and network access for this database (it cannot be turned
    back on while the process runs); the store's own file, WAL and spill still work."""
    with store.cursor() as cur:
        cur.execute("SET enable_external_access = false")


def _refuse_ref(node: dict[str, Any], ctes: frozenset[str]) -> str | None:
    """Why a table reference may not be read, or None."""
    kind = node.get("type")
    if kind in _PASS_REFS:
        return None
    if kind == "TABLE_FUNCTION":
        name = (node.get("function") or {}).get("function_name", "?")
        return f"table function {name}() is not allowed: only the audit tables may be read"
    if kind != "BASE_TABLE":
        return f"{str(kind).lower()} is not allowed: only SELECT over the audit tables"
    name, schema = str(node.get("table_name", "")), node.get("schema_name", "")
    if not node.get("catalog_name") and not schema and name.lower() in ctes:
        return None
    if not node.get("catalog_name") and schema in ("", "main") and name.lower() in AUDIT_TABLES:
        return None
    shown = ".".join(p for p in (node.get("catalog_name"), schema, name) if p)
    return f"table {shown!r} is not an audit table ({', '.join(AUDIT_TABLES)})"


def _walk(node: Any, ctes: frozenset[str], problems: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, ctes, problems)
        return
    if not isinstance(node, dict):
        return
    cte_map = node.get("cte_map")
    if isinstance(cte_map, dict):  # a query node: its CTEs are visible below it only
        ctes = ctes | {str(e.get("key", "")).lower() for e in cte_map.get("map", [])}
    if "class" not in node and "sample" in node and "alias" in node:  # a table reference
        if (why := _refuse_ref(node, ctes)) is not None:
            problems.append(why)
    elif node.get("class") == "FUNCTION" and node.get("function_name") in _DENIED_FUNCTIONS:
        problems.append(f"function {node['function_name']}() is not allowed")
    for value in node.values():
        _walk(value, ctes, problems)


def check(sql: str, cur: duckdb.DuckDBPyConnection) -> str:
    """The text of the one SELECT in `sql` if it reads only the audit tables; raises
    `QueryRefused` with the reason otherwise."""
    if len(sql) > MAX_SQL:
        raise QueryRefused(f"query longer than {MAX_SQL} characters")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"not valid SQL: {exc}") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT is allowed, not {statements[0].type.name}")
    text = statements[0].query.strip().rstrip(";").strip()
    (tree,) = cur.execute("SELECT json_serialize_sql(?::VARCHAR)", [text]).fetchone()
    parsed = json.loads(tree)
    if parsed.get("error"):
        raise QueryRefused(f"not a plain SELECT: {parsed.get('error_message')}")
    problems: list[str] = []
    _walk(parsed["statements"], frozenset(), problems)
    if problems:
        raise QueryRefused("; ".join(dict.fromkeys(problems)))
    return text


def run(cur: duckdb.DuckDBPyConnection, sql: str, *, row_limit: int = 1000,
        timeout_s: float = 10.0) -> QueryResult:
    """Check, then run `sql` with a row limit and a timeout."""
    text = check(sql, cur)
    wrapped = f"SELECT * FROM (\n{text}\n) AS audit_query LIMIT {int(row_limit) + 1}"
    timer = threading.Timer(timeout_s, cur.interrupt)
    timer.start()
    try:
        cur.execute(wrapped)
        columns = [d[0] for d in cur.description]
        rows = [list(r) for r in cur.fetchall()]
    except duckdb.InterruptException:
        raise QueryTimeout(f"query ran longer than {timeout_s:g} s and was stopped") from None
    except duckdb.Error as exc:
        raise QueryRefused(f"query failed: {exc}") from None
    finally:
        timer.cancel()
    return QueryResult(columns, rows[:row_limit], len(rows) > row_limit, row_limit)
