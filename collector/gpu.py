"""GPU partition samples in: DCGM exporter text, and JSON batches of `GpuSample`s.

`POST /v1/gpu/dcgm` takes what the exporter serves (Prometheus text), so a node can
forward its scrape unchanged; labels the exporter cannot know (site, tier, node) come
as query parameters. `POST /v1/gpu/samples` takes samples already shaped (from
`steward gpu-sampler`). Like every ingest route, the answer comes after Kafka
acknowledged; each rejected sample is dead-lettered with its reason, and the
request fails (400) only when nothing in it was usable.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from collector.batches import accept, validate_items
from collector.bodies import read_limited, records_of
from steward import topics as T
from steward.errors import InvalidInput
from steward.gpu.dcgm import parse_text, to_samples
from steward.gpu.inventory import slice_of
from steward.schema import GpuSample

router = APIRouter(tags=["gpu"])
Label = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]*$")]


@router.post("/v1/gpu/dcgm", summary="DCGM exporter metrics (Prometheus text)")
async def ingest_dcgm(request: Request, site: Label = None, tier: Label = None,
                      node: Label = None) -> Response:
    """One scrape of the exporter: one sample per partition and instant. Query parameters
    fill the labels the series lack (site is required one way or the other)."""
    ctx = request.app.state
    principal = ctx.auth.authenticate(request.headers.get("authorization"), "ingest")
    body = await read_limited(request, ctx.settings.max_body_bytes)
    try:
        series = parse_text(body.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not Prometheus text exposition: {exc}") from None
    defaults = {k: v for k, v in (("site", site), ("tier", tier), ("hostname", node)) if v}
    parsed = to_samples(series, ctx.publisher.clock(), defaults)
    bad = [(None, why, json.dumps(raw, default=str).encode()) for why, raw in parsed.rejected]
    return await accept(request, principal, T.GPU, "gpu.dcgm", parsed.samples, bad, "sample",
                        parsed.ignored)


@router.post("/v1/gpu/samples", summary="A JSON batch of GPU partition samples")
async def ingest_samples(request: Request) -> Response:
    """Body: `{"records": [...]}` of `GpuSample`s, each checked against the MIG catalogue."""
    ctx = request.app.state
    principal = ctx.auth.authenticate(request.headers.get("authorization"), "ingest")
    items = records_of(await read_limited(request, ctx.settings.max_body_bytes))
    good, bad = await run_in_threadpool(validate_items, items, GpuSample, slice_of)
    return await accept(request, principal, T.GPU, "gpu.samples", good, bad, "sample", 0)
