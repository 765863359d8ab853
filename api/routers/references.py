"""Reference datasets: register one per model version, list them, fetch one whole."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import AdminDep, IngestDep, ReaderDep, ReferencesDep
from api.references import read_table
from api.schemas import ReferenceOut, ReferenceSummary
from collector.bodies import read_limited
from steward.errors import InvalidInput, NotFound
from steward.profiles import ProfileSpec, spec_from_reference
from steward.schema.records import NAME_PATTERN

router = APIRouter(tags=["references"])

NAME = NAME_PATTERN
MAX_BODY = 64 * 1024 * 1024
ModelName = Annotated[str, Path(pattern=NAME)]


@router.put("/references/{model}/{version}", response_model=ReferenceSummary, status_code=201,
            max_body_size=MAX_BODY,
            openapi_extra={"requestBody": {"content": {"text/csv": {},
                                                       "application/vnd.apache.parquet": {}}}})
async def put_reference(
    _admin: AdminDep, request: Request, refs: ReferencesDep, model: ModelName,
    version: Annotated[str, Path(pattern=NAME)],
    categorical: Annotated[list[str], Query(description="columns to treat as categorical")] = [],  # noqa: B006
    prediction: Annotated[str | None, Query(description="the prediction column")] = None,
) -> ReferenceSummary:
    """Register (or replace) the reference of `model` `version` from a CSV or Parquet body.
    Columns are numerical unless listed in `categorical`."""
    body = await read_limited(request, MAX_BODY)
    if not body:
        raise InvalidInput("empty body: send the reference as CSV or Parquet")
    frame = read_table(body, request.headers.get("content-type", ""))
    ref = await run_in_threadpool(refs.put, model, version, frame, categorical, prediction)
    return ReferenceSummary(model=ref.model, version=ref.version, columns=ref.columns,
                            prediction=ref.prediction, rows=len(ref.rows), source=ref.source,
                            created_at=ref.created_at)


@router.get("/references", response_model=list[ReferenceSummary])
def list_references(_reader: ReaderDep, refs: ReferencesDep) -> list[ReferenceSummary]:
    return [ReferenceSummary(**r) for r in refs.list()]


@router.get("/references/{model}/{version}", response_model=ReferenceOut,
            responses={404: {"description": "no reference for this model version"}})
def get_reference(_reader: ReaderDep, refs: ReferencesDep, model: ModelName,
                  version: Annotated[str, Path(pattern=NAME)]) -> ReferenceOut:
    """The whole reference, rows included: what the drift processors judge against."""
    ref = refs.get(model, version)
    if ref is None:
        raise NotFound(f"no reference for {model} {version}; PUT one first")
    return ReferenceOut(model=ref.model, version=ref.version, columns=ref.columns,
                        prediction=ref.prediction, rows=len(ref.rows), source=ref.source,
                        created_at=ref.created_at, data=ref.rows)


@router.get("/references/{model}/{version}/profile-spec", response_model=ProfileSpec,
            responses={404: {"description": "no reference for this model version"}})
async def get_profile_spec(_agent: IngestDep, refs: ReferencesDep, model: ModelName,
                           version: Annotated[str, Path(pattern=NAME)]) -> ProfileSpec:
    """What an edge agent profiles for this version instead of sending raw features: the
    reference's columns, bin edges at its deciles, the KLL k and the reservoir size, and
    the `spec_id` that profiles built to it carry. Derived from the stored reference, so
    it changes when the reference is replaced."""
    ref = await run_in_threadpool(refs.get, model, version)
    if ref is None:
        raise NotFound(f"no reference for {model} {version}: no profile spec; PUT one first")
    return await run_in_threadpool(spec_from_reference, ref.model, ref.version, ref.columns,
                                   ref.prediction, ref.rows)
