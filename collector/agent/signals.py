"""What each intake route carries, in one table the intake, batcher and forwarder share.

A signal is a route on both the agent and the collector. OTLP signals carry the
collector's `otlp.Signal` (export request to validate and merge, response whose
`partial_success` says how many items the collector rejected) and an item counter;
inferences are JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.otlp import LOGS, METRICS, TRACES
from collector.otlp import Signal as OtlpSignal

INFERENCES = "inferences"
PROFILES = "profiles"


@dataclass(frozen=True)
class Signal:
    """One kind of telemetry: its route, and for OTLP its messages and item counter."""

    name: str
    path: str
    otlp: OtlpSignal | None = None
    """The OTLP messages (request, response, rejected counter); None for JSON inferences."""
    count: Callable[[Any], int] = lambda _: 0
    """Items (data points, spans, log records) in a parsed export request."""

    @property
    def is_otlp(self) -> bool:
        return self.otlp is not None


def _data_points(req: Any) -> int:
    total = 0
    for metric in (m for rm in req.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics):
        kind = metric.WhichOneof("data")
        total += len(getattr(metric, kind).data_points) if kind else 0
    return total


def _spans(req: Any) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def _log_records(req: Any) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def _otlp_signal(messages: OtlpSignal, count: Callable[[Any], int]) -> Signal:
    return Signal(messages.name, f"/v1/{messages.name}", messages, count)


SIGNALS: dict[str, Signal] = {s.name: s for s in (
    _otlp_signal(METRICS, _data_points),
    _otlp_signal(TRACES, _spans),
    _otlp_signal(LOGS, _log_records),
    Signal(INFERENCES, "/v1/inferences"),
    Signal(PROFILES, "/v1/profiles"),
)}
