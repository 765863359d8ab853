"""OTLP metrics that are DCGM fields -> `GpuSample`s; everything else stays a `MetricPoint`.

An OpenTelemetry Collector scraping the DCGM exporter forwards its series as OTLP
gauges named like the fields, labels as data-point attributes; node and site may
come from resource attributes (`host.name`, `steward.site`, `cloud.region`). Those
data points go through the same grouping and checks as exporter text
(`steward.gpu.dcgm`), so both paths give the same samples. The other metrics of the
request are mapped as before (`collector.otlp_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from collector.otlp import MappingResult
from collector.otlp_attrs import attributes, unix_time
from collector.otlp_metrics import metrics_to_points
from steward.gpu.dcgm import Series, is_dcgm, to_samples


def split_gpu(req: ExportMetricsServiceRequest) -> tuple[list[Series], ExportMetricsServiceRequest]:
    """The DCGM series of a request, and the request without them (the same object when
    it has none, so requests without GPU metrics cost nothing extra)."""
    series = list(_series(req))
    if not series:
        return [], req
    rest = ExportMetricsServiceRequest()
    rest.CopyFrom(req)
    for rm in rest.resource_metrics:
        for sm in rm.scope_metrics:
            keep = [m for m in sm.metrics if not is_dcgm(m.name)]
            del sm.metrics[:]
            sm.metrics.extend(keep)
    return series, rest


def _series(req: ExportMetricsServiceRequest) -> Iterator[Series]:
    for rm in req.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for metric in (m for sm in rm.scope_metrics for m in sm.metrics if is_dcgm(m.name)):
            kind = metric.WhichOneof("data")
            if kind not in ("gauge", "sum"):
                continue
            for dp in getattr(metric, kind).data_points:
                which = dp.WhichOneof("value")
                labels = {k: str(v) for k, v in {**resource, **attributes(dp.attributes)}.items()}
                ts = unix_time(dp.time_unix_nano) if dp.time_unix_nano else None
                value = float(getattr(dp, which)) if which else float("nan")
                yield Series(metric.name, labels, value, ts)


def metrics_and_gpu(req: ExportMetricsServiceRequest, now: datetime) -> MappingResult:
    """Metric points and GPU samples of one export; each rejected item alone, with a reason."""
    series, rest = split_gpu(req)
    result = metrics_to_points(rest)
    if series:
        parsed = to_samples(series, now)
        result.records.extend(parsed.samples)
        result.ignored += parsed.ignored
        for reason, raw in parsed.rejected:
            result.reject(f"GPU sample: {reason}", raw)
    return result
