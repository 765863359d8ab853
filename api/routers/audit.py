"""Audit: the lineage of one action, the decision log with filters, the chain check and
read-only SQL over the audit tables. Every route needs the admin scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import audit_sql
from api.audit import lineage
from api.decisions import DecisionQuery
from api.deps import AdminDep, DecisionsDep, RolloutRunsDep, StoreDep, VerdictsDep
from api.schemas import (
    ActionLineage,
    AuditQuery,
    AuditQueryResult,
    ChainStatus,
    DecisionsPage,
)
from steward.errors import NotFound

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/actions/{action_id}", response_model=ActionLineage,
            responses={404: {"description": "no event, denial or decision has this id"}})
def action_lineage(_admin: AdminDep, store: StoreDep, decisions: DecisionsDep,
                   verdicts: VerdictsDep, runs: RolloutRunsDep,
                   action_id: Annotated[str, Path(max_length=200)]) -> ActionLineage:
    """The action event (or its denial), the decision behind it with its rule path,
    revision and input, and the verdicts, windows and stats the processor judged."""
    found = lineage(action_id, store, decisions, verdicts, runs)
    if found is None:
        raise NotFound(f"no action, denial or decision for id {action_id!r}")
    return ActionLineage.model_validate(found)


@router.get("/decisions", response_model=DecisionsPage)
def list_decisions(
    _admin: AdminDep,
    decisions: DecisionsDep,
    model: Annotated[str | None, Query(max_length=128)] = None,
    site: Annotated[str | None, Query(max_length=128, description="one of the action's "
                                      "sites (input.action.sites)")] = None,
    allowed: Annotated[bool | None, Query(description="only allowed (true) or denied")] = None,
    proposal_type: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="decision time >= since")] = None,
    until: Annotated[datetime | None, Query(description="decision time < until")] = None,
    after: Annotated[int, Query(ge=0, description="cursor from `next_after`")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionsPage:
    """Decisions in chain order; follow `next_after` to page."""
    rows = decisions.query(DecisionQuery(model=model, site=site, allowed=allowed,
                                         proposal_type=proposal_type, since=since,
                                         until=until, after=after, limit=limit))
    return DecisionsPage(decisions=[d for _, d in rows],
                         next_after=rows[-1][0] if rows else after, has_more=len(rows) == limit)


@router.get("/verify", response_model=ChainStatus)
def verify_chain(_admin: AdminDep, decisions: DecisionsDep) -> ChainStatus:
    """Recompute the decision chain (what `steward audit verify` does offline): `ok`, or
    the first broken seq and why."""
    report = decisions.verify()
    return ChainStatus(ok=report.ok, checked=report.checked, head_seq=report.head_seq,
                       head_hash=report.head_hash, broken_seq=report.broken_seq,
                       problem=report.problem, detail=report.detail)  # type: ignore[arg-type]


@router.post("/query", response_model=AuditQueryResult,
             responses={400: {"description": "refused: not one SELECT over audit tables"},
                        408: {"description": "ran past the timeout"}})
def query(_admin: AdminDep, store: StoreDep, body: AuditQuery,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> AuditQueryResult:
    """One read-only SELECT over decisions, events and drift_verdicts, at most `limit`
    rows, stopped after 10 s."""
    with store.cursor() as cur:
        result = audit_sql.run(cur, body.sql, row_limit=limit)
    return AuditQueryResult(columns=result.columns, rows=result.rows,
                            truncated=result.truncated, row_limit=result.row_limit)
