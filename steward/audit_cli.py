"""`steward audit verify|query` and `steward policy backtest`: audit work on the store.

These open the DuckDB file read-only (external access off), so they work while the API
is stopped, e.g. on a copy of the file an auditor was handed. DuckDB lets one process
hold a file for writing and no other open it meanwhile: with the API running, ask the API
instead (`GET /audit/verify`, `POST /audit/query`, `backtest --api URL`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

audit_app = typer.Typer(help="Check and query the decision log.", no_args_is_help=True)

Db = Annotated[Path | None, typer.Option(
    help="The store's DuckDB file (default: the API's, from STEWARD_DATA_DIR/DB_FILE).")]


def _db_path(db: Path | None) -> Path:
    if db is not None:
        return db
    from api.settings import ApiSettings

    return ApiSettings().db_path


@contextmanager
def _read_only(db: Path | None) -> Iterator[Any]:
    import duckdb

    path = _db_path(db)
    if not path.exists():
        raise typer.BadParameter(f"no store at {path}", param_hint="--db")
    try:
        conn = duckdb.connect(str(path), read_only=True,
                              config={"enable_external_access": False})
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        typer.echo(f"cannot open {path} read-only ({exc}); while the API runs it holds the "
                   "file: use GET /audit/verify or POST /audit/query on the API", err=True)
        raise typer.Exit(2) from None
    try:
        yield conn
    finally:
        conn.close()


@audit_app.command("verify")
def audit_verify(db: Db = None) -> None:
    """Recompute the decision hash chain; exit 1 at the first broken seq."""
    from api.decisions import verify

    with _read_only(db) as conn:
        report = verify(conn)
    typer.echo(json.dumps({"ok": report.ok, "checked": report.checked,
                           "head_seq": report.head_seq, "head_hash": report.head_hash,
                           "broken_seq": report.broken_seq, "problem": report.problem,
                           "detail": report.detail}, indent=2))
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("query")
def audit_query(
    sql: Annotated[str, typer.Argument(help="One SELECT over decisions, events, "
                                            "drift_verdicts.")],
    db: Db = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most rows printed.")] = 1000,
) -> None:
    """Run one read-only SELECT over the audit tables; rows as JSON lines."""
    from api.audit_sql import run
    from steward.errors import StewardError

    with _read_only(db) as conn:
        try:
            result = run(conn, sql, row_limit=limit)
        except StewardError as exc:
            typer.echo(f"refused: {exc.reason}", err=True)
            raise typer.Exit(2) from None
    for row in result.rows:
        typer.echo(json.dumps(dict(zip(result.columns, row, strict=True)), default=str))
    if result.truncated:
        typer.echo(f"(cut at {limit} rows)", err=True)


def _stored(db: Path | None) -> list[Any]:
    from steward.schema.governance import Decision

    with _read_only(db) as conn:
        rows = conn.execute("SELECT decision FROM decisions ORDER BY seq").fetchall()
    return [Decision.model_validate(json.loads(doc)) for (doc,) in rows]


def _fetched(api: str, token: str | None) -> list[Any]:
    import httpx

    from steward.schema.governance import Decision

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out, after = [], 0
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        while True:
            resp = client.get("/audit/decisions", params={"after": after, "limit": 1000})
            resp.raise_for_status()
            page = resp.json()
            out += [Decision.model_validate(d) for d in page["decisions"]]
            if not page["has_more"]:
                return out
            after = page["next_after"]


def policy_backtest(
    rules: Annotated[Path, typer.Option(help="The candidate rules directory.", exists=True,
                                        file_okay=False)],
    db: Db = None,
    api: Annotated[str | None, typer.Option(help="Read decisions from this Steward API "
                                                 "instead of the file (needs an admin token).")]
    = None,
    token: Annotated[str | None, typer.Option(envvar="STEWARD_API_TOKEN",
                                              help="Admin token for --api.")] = None,
) -> None:
    """Re-decide every stored decision with the rules in --rules and report the flips.
    Emits nothing."""
    from steward.governance.backtest import backtest
    from steward.governance.embedded import EmbeddedEngine

    decisions = _fetched(api, token) if api else _stored(db)
    report = backtest(decisions, EmbeddedEngine(rules))
    typer.echo(report.model_dump_json(indent=2))
    print(f"{report.evaluated} decisions re-evaluated ({report.evaluated_masked} with masked "
          f"fields): {len(report.to_denied)} allowed -> denied, {len(report.to_allowed)} "
          f"denied -> allowed, {len(report.errors)} errors", file=sys.stderr)
