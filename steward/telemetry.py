"""Steward's own OpenTelemetry: providers built from the standard `OTEL_*` variables.

Each deployable's `main` calls `from_env(<default service name>)` once and passes the
result down. With no OTLP endpoint configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or the
signal's own `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`), nothing is
built: the no-op providers stand in and the callers skip their tracing work entirely,
so an unconfigured Steward pays nothing for it. Exporters are OTLP/HTTP (protobuf) and
read the rest of their settings (headers, timeout, compression, batch and export
intervals, sampler) from the usual variables themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace

from steward import __version__

SCOPE = "steward"
UNTRACED = "://[^/]+/(healthz|readyz|metrics)$"
"""Probes and scrapes (regex on the request URL): not `/v1/metrics`, which is ingest."""


@dataclass(frozen=True)
class Telemetry:
    """The tracer and meter providers of one process, and whether each one records."""

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    tracing: bool = False
    metering: bool = False

    @property
    def enabled(self) -> bool:
        return self.tracing or self.metering

    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(SCOPE, __version__)

    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter(SCOPE, __version__)

    def install(self) -> None:
        """Make these the process-wide providers (once, from `main`), so libraries that
        look them up globally report to the same place."""
        if self.tracing:
            trace.set_tracer_provider(self.tracer_provider)
        if self.metering:
            metrics.set_meter_provider(self.meter_provider)

    def instrument(self, app: Any) -> None:
        """Server spans (W3C `traceparent` from clients honoured) and HTTP server metrics
        for a FastAPI app; nothing when telemetry is off."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider,
            excluded_urls=UNTRACED, exclude_spans=["receive", "send"])

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters (end of `main`)."""
        for provider in (self.tracer_provider, self.meter_provider):
            stop = getattr(provider, "shutdown", None)
            if stop is not None:
                stop()


def off() -> Telemetry:
    """No telemetry: the API's no-op providers."""
    return Telemetry(trace.NoOpTracerProvider(), metrics.NoOpMeterProvider())


def _wanted(env: Mapping[str, str], signal: str) -> bool:
    if env.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def from_env(service: str, env: Mapping[str, str] | None = None) -> Telemetry:
    """Providers for `service` (the default `service.name`; `OTEL_SERVICE_NAME` and
    `OTEL_RESOURCE_ATTRIBUTES` win) exporting by OTLP/HTTP where an endpoint is set."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return off()
    tracing, metering = _wanted(env, "TRACES"), _wanted(env, "METRICS")
    if not (tracing or metering):
        return off()
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    resource = Resource.create({"service.name": service, "service.version": __version__,
                                "service.namespace": "steward"})
    resource = resource.merge(OTELResourceDetector().detect())
    base = off()
    return Telemetry(
        _tracer_provider(resource) if tracing else base.tracer_provider,
        _meter_provider(resource) if metering else base.meter_provider,
        tracing, metering)


def _tracer_provider(resource: Any) -> trace.TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _meter_provider(resource: Any) -> metrics.MeterProvider:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    return MeterProvider(resource=resource, metric_readers=[reader])
