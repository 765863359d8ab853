"""Ingest routes: OTLP/HTTP metrics, traces and logs, and JSON inference batches.

Each answers 200 only after Kafka acknowledged everything it accepted; rejected
items are dead-lettered with their reason in the same call. When Kafka cannot
take the data the answer is 429/503 with Retry-After; part of the request may
already be in Kafka then, and the client's retry carries the same record ids,
which downstream deduplication relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from collector import otlp
from collector.batches import accept, publish, validate_body, validate_items
from collector.bodies import error_headers, read_limited, records_of
from collector.otlp_gpu import metrics_and_gpu
from collector.otlp_inference import logs_to_records, spans_to_records
from steward import topics as T
from steward.auth import check_sites
from steward.errors import StewardError
from steward.schema import FeatureProfile, GpuSample, InferenceRecord

router = APIRouter(tags=["ingest"])

PROTOBUF = "application/x-protobuf"


def _otlp_error(exc: StewardError, content_type: str) -> Response:
    body, media = otlp.status_body(exc.status, exc.reason, content_type, exc.code)
    return Response(body, status_code=exc.status, media_type=media, headers=error_headers(exc))


@router.post("/v1/metrics", summary="OTLP/HTTP metrics export (protobuf or JSON)")
async def export_metrics(request: Request) -> Response:
    """Each data point becomes a metric point on the metrics topic; DCGM fields become GPU
    partition samples on the GPU topic (see `collector.otlp_gpu`)."""
    clock = request.app.state.publisher.clock
    return await _otlp_export(request, otlp.METRICS, lambda req: metrics_and_gpu(req, clock()),
                              T.METRICS)


@router.post("/v1/traces", summary="OTLP/HTTP traces export (protobuf or JSON)")
async def export_traces(request: Request) -> Response:
    """Inference spans become inference records; other spans are ignored."""
    return await _otlp_export(request, otlp.TRACES, spans_to_records, T.INFERENCE)


@router.post("/v1/logs", summary="OTLP/HTTP logs export (protobuf or JSON)")
async def export_logs(request: Request) -> Response:
    """Inference log records become inference records; other log records are ignored."""
    return await _otlp_export(request, otlp.LOGS, logs_to_records, T.INFERENCE)


async def _otlp_export(request: Request, signal: otlp.Signal,
                       to_records: Callable[[Any], otlp.MappingResult], topic: T.Topic
                       ) -> Response:
    """One OTLP export: authenticate, read, parse, map, check sites, publish and wait for
    Kafka's ack, then answer (partial success when items were rejected). Errors are
    google.rpc.Status bodies in the request's encoding."""
    ctx = request.app.state
    route = f"/v1/{signal.name}"
    content_type = request.headers.get("content-type", PROTOBUF)
    try:
        principal = ctx.auth.authenticate(request.headers.get("authorization"), "ingest")
        body = await read_limited(request, ctx.settings.max_body_bytes)
        result = to_records(signal.parse(body, content_type))
        check_sites(principal, {r.site for r in result.records})
        gpu = [r for r in result.records if isinstance(r, GpuSample)]
        rest = [r for r in result.records if not isinstance(r, GpuSample)]
        outs = ctx.publisher.messages(topic, rest)
        outs += ctx.publisher.messages(T.GPU, gpu)
        outs += ctx.publisher.dead_letters(
            f"collector.otlp.{signal.name}", [(None, why, raw) for why, raw in result.dead])
        await publish(ctx, outs)
    except StewardError as exc:
        ctx.metrics.requests.labels(route, str(exc.status)).inc()
        return _otlp_error(exc, content_type)
    for outcome, n in (("accepted", len(result.records)), ("rejected", result.rejected),
                       ("ignored", result.ignored)):
        ctx.metrics.records.labels(signal.name, outcome).inc(n)
        ctx.otel.ingested(signal.name, outcome, n)
    ctx.metrics.requests.labels(route, "200").inc()
    return Response(signal.response(result.rejected, result.message, content_type),
                    media_type=otlp.response_media_type(content_type))


@router.post("/v1/inferences", summary="A JSON batch of inference records")
async def ingest_inferences(request: Request) -> Response:
    """Body: `{"records": [...]}` (or a bare list). Valid records are accepted even when
    others are not; rejected ones are listed with reasons and dead-lettered. 400 when
    nothing in the body could be accepted."""
    ctx = request.app.state
    principal = ctx.auth.authenticate(request.headers.get("authorization"), "ingest")
    body = await read_limited(request, ctx.settings.max_body_bytes)
    good, bad = validate_body(body, InferenceRecord)
    return await accept(request, principal, T.INFERENCE, "inferences", good, bad, "record")


@router.post("/v1/profiles", summary="A JSON batch of per-window feature profiles")
async def ingest_profiles(request: Request) -> Response:
    """Body: `{"records": [FeatureProfile, ...]}` (or a bare list), from edge agents that
    send profiles instead of raw features. Same answers as `/v1/inferences`: valid
    profiles are published, invalid ones listed with reasons and dead-lettered."""
    ctx = request.app.state
    principal = ctx.auth.authenticate(request.headers.get("authorization"), "ingest")
    items = records_of(await read_limited(request, ctx.settings.max_body_bytes))
    good, bad = await run_in_threadpool(validate_items, items, FeatureProfile)
    return await accept(request, principal, T.PROFILES, "profiles", good, bad, "profile")
