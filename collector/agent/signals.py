"""What each intake route carries, in one table the intake, batcher and forwarder share.

A signal is a route on both the agent and the collector. OTLP signals have an export
request message (to validate, count and merge) and a response message (whose
`partial_success` says how many items the collector rejected); inferences are JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

INFERENCES = "inferences"


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry: its route, and for OTLP its messages and item counter."""

    name: str
    path: str
    request: type[Message] | None = None
    response: type[Message] | None = None
    rejected_field: str = ""
    """The `partial_success` field holding the count of items the collector rejected."""
    count: Callable[[Message], int] = lambda _: 0
    """Items (data points, spans, log records) in a parsed export request."""

    @property
    def is_otlp(self) -> bool:
        return self.request is not None


def _data_points(req: ExportMetricsServiceRequest) -> int:
    total = 0
    for metric in (m for rm in req.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics):
        kind = metric.WhichOneof("data")
        total += len(getattr(metric, kind).data_points) if kind else 0
    return total


def _spans(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def _log_records(req: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


SIGNALS: dict[str, Signal] = {s.name: s for s in (
    Signal("metrics", "/v1/metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse,
           "rejected_data_points", _data_points),
    Signal("traces", "/v1/traces", ExportTraceServiceRequest, ExportTraceServiceResponse,
           "rejected_spans", _spans),
    Signal("logs", "/v1/logs", ExportLogsServiceRequest, ExportLogsServiceResponse,
           "rejected_log_records", _log_records),
    Signal(INFERENCES, "/v1/inferences"),
)}
