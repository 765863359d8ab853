"""Local intake: the collector's wire formats, answered once the data is on disk.

Local SDKs and model servers post here exactly what they would post to the
collector. Everything is validated before it is accepted, because the sender is
on the same box and can fix its data now, while an upstream rejection hours later
reaches nobody: OTLP must parse, and an inference batch with any invalid record is
refused whole (400, with a reason per index; nothing spooled). Accepted data is
stored normalised: OTLP as protobuf, inference records as validated JSON with an
`id` on each, so every retry upstream carries the same ids, and with `agent_backlog`: the
records waiting in the spool when they were spooled (the fleet view's spool backlog).
The answer is 200 only after the spool committed the entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import ValidationError

from collector import otlp
from collector.agent.batch import encode_records
from collector.agent.metrics import AgentMetrics
from collector.agent.profiler import Profiler
from collector.agent.sampling import sample
from collector.agent.signals import INFERENCES, SIGNALS, Signal
from collector.agent.spool import Spool, SpoolFull
from collector.bodies import error_headers, read_limited, records_of
from collector.otlp import JSON, PROTOBUF
from steward import __version__
from steward.codec import validation_reason
from steward.errors import StewardError
from steward.schema import InferenceRecord

log = logging.getLogger(__name__)
MAX_ERRORS = 100


class Intake:
    """Validates and spools; the HTTP layer only reads bodies and writes answers."""

    def __init__(self, spool: Spool, metrics: AgentMetrics, max_body_bytes: int,
                 on_spooled: Callable[[], None] = lambda: None,
                 sample_rate: float = 1.0, profiler: Profiler | None = None) -> None:
        self.spool = spool
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.on_spooled = on_spooled
        self.sample_rate = sample_rate
        self.profiler = profiler
        """Profile mode: records of versions with a spec wait for their window's profile."""

    def otlp(self, signal: Signal, body: bytes, content_type: str | None) -> int:
        """Parse an export request and spool it as protobuf; returns the items stored."""
        assert signal.otlp is not None
        msg = signal.otlp.parse(body, content_type)
        items = signal.count(msg)
        if items:
            self._store(signal.name, PROTOBUF, msg.SerializeToString(), items)
        return items

    def inferences(self, body: bytes) -> tuple[int, list[dict[str, Any]]]:
        """(records spooled, errors by index). Any error: nothing is spooled."""
        items = records_of(body)
        good, errors = [], []
        for i, item in enumerate(items):
            try:
                good.append(InferenceRecord.model_validate(item)
                            .model_dump(mode="json", by_alias=True))
            except ValidationError as exc:
                errors.append({"index": i, "reason": validation_reason(exc)})
        if errors:
            return 0, errors
        raw, groups = self.profiler.split(good) if self.profiler else (good, [])
        kept, left_out = sample(raw, self.sample_rate)
        self.metrics.sampled_out_records.labels(INFERENCES).inc(left_out)
        if kept:  # each record says how far behind the link was: the fleet view shows it
            backlog = self.spool.records()
            for r in kept:  # in place: dicts built above (dumps or copies), none in `groups`
                r["agent_backlog"] = backlog
            self._store(INFERENCES, JSON, encode_records(kept), len(kept))
        if groups and self.profiler:  # after the raw ones: a failure here makes the client
            self.profiler.commit(groups)  # retry, repeating raw records (same ids) only
        return len(good), []

    def store(self, signal: str, content_type: str, body: bytes, records: int) -> None:
        """Append one entry to the spool, counting what the full-spool policy does."""
        self._store(signal, content_type, body, records)

    def _store(self, signal: str, content_type: str, body: bytes, records: int) -> None:
        try:
            dropped = self.spool.append(signal, content_type, body, records)
        except SpoolFull:
            self.metrics.refused_records.labels(signal).inc(records)
            log.warning("spool full (refuse-newest): refused %d %s records", records, signal)
            raise
        for d in dropped:
            self.metrics.dropped_entries.labels(d.signal, "spool-full").inc(d.entries)
            self.metrics.dropped_records.labels(d.signal, "spool-full").inc(d.records)
            log.warning("spool full (drop-oldest): dropped the %d oldest %s entries "
                        "(%d records) unsent", d.entries, d.signal, d.records)
        self.metrics.spooled_entries.labels(signal).inc()
        self.metrics.spooled_records.labels(signal).inc(records)
        self.on_spooled()


def create_app(intake: Intake, registry: CollectorRegistry,
               ready: Callable[[], dict[str, bool]]) -> FastAPI:
    """The agent's HTTP app: one OTLP route per signal, inferences, health, metrics."""
    app = FastAPI(title="Steward edge agent", version=__version__,
                  description="Local OTLP/HTTP and JSON intake; answers once spooled.")
    for signal in SIGNALS.values():
        if signal.is_otlp:
            app.add_api_route(signal.path, _otlp_route(intake, signal), methods=["POST"],
                              summary=f"OTLP/HTTP {signal.name} export, spooled")

    @app.post("/v1/inferences", summary="A JSON batch of inference records, spooled")
    async def inferences(request: Request) -> Response:
        return await _inference_route(intake, request)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = ready()
        ok = all(checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _otlp_route(intake: Intake, signal: Signal) -> Callable[[Request], Any]:
    async def export(request: Request) -> Response:
        content_type = request.headers.get("content-type", PROTOBUF)
        try:
            body = await read_limited(request, intake.max_body_bytes)
            await run_in_threadpool(intake.otlp, signal, body, content_type)
        except StewardError as exc:
            intake.metrics.requests.labels(signal.path, str(exc.status)).inc()
            payload, media = otlp.status_body(exc.status, exc.reason, content_type, exc.code)
            return Response(payload, status_code=exc.status, media_type=media,
                            headers=error_headers(exc))
        intake.metrics.requests.labels(signal.path, "200").inc()
        media = otlp.response_media_type(content_type)
        return Response(b"" if media == PROTOBUF else b"{}", media_type=media)
    return export


async def _inference_route(intake: Intake, request: Request) -> Response:
    try:
        body = await read_limited(request, intake.max_body_bytes)
        accepted, errors = await run_in_threadpool(intake.inferences, body)
    except StewardError as exc:
        intake.metrics.requests.labels("/v1/inferences", str(exc.status)).inc()
        return JSONResponse(exc.body(), status_code=exc.status,
                            headers=error_headers(exc))
    status = 400 if errors else 200
    intake.metrics.requests.labels("/v1/inferences", str(status)).inc()
    payload: dict[str, Any] = {"accepted": accepted, "rejected": len(errors),
                               "errors": errors[:MAX_ERRORS]}
    if errors:
        payload["detail"] = (f"{len(errors)} record(s) are invalid; nothing was spooled. "
                             "Fix them and send the batch again.")
    return JSONResponse(payload, status_code=status)
