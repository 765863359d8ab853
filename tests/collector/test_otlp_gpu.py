"""GPU metrics over OTLP: DCGM-named gauges become the same samples exporter text gives,
and every other metric of the request is mapped as before."""

from __future__ import annotations

import json
from pathlib import Path

from collector.otlp import parse_metrics
from collector.otlp_gpu import metrics_and_gpu, split_gpu
from steward.gpu.dcgm import parse_text, to_samples
from steward.schema import GpuSample, MetricPoint
from tests.gpu_support import T0, a100_rows, exposition, h100_rows, otlp_json

RESOURCE = {"steward.site": "eu-west-1", "service.name": "dcgm-scraper"}


def _request(rows: list, extra_metrics: list | None = None) -> object:
    doc = otlp_json(rows, RESOURCE)
    doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"] += extra_metrics or []
    return parse_metrics(json.dumps(doc).encode(), "application/json")


def test_otlp_and_exporter_text_give_the_same_samples(shared_data: Path) -> None:
    rows = h100_rows() + a100_rows()
    result = metrics_and_gpu(_request(rows), T0)
    from_text = to_samples(parse_text(exposition(rows, shared_data)), T0,
                           {"site": "eu-west-1"})
    assert result.rejected == 0
    samples = [r for r in result.records if isinstance(r, GpuSample)]
    assert sorted(s.id for s in samples) == sorted(s.id for s in from_text.samples)
    assert len(samples) == 14  # 4 instances x 2 instants + 3 replicas x 2 instants
    assert result.ignored == 2  # the MIG card's device power: no instance owns it
    temps = [r for r in result.records if isinstance(r, MetricPoint)]
    assert [t.name for t in temps] == ["DCGM_FI_DEV_GPU_TEMP"] * 2  # not a field Steward reads


def test_other_metrics_of_the_request_still_become_metric_points() -> None:
    latency = {"name": "steward.inference.latency", "unit": "ms", "gauge": {"dataPoints": [
        {"timeUnixNano": str(int(T0.timestamp()) * 10**9), "asDouble": 12.5}]}}
    req = _request(a100_rows()[:4], [latency])
    series, rest = split_gpu(req)
    assert len(series) == 4
    assert [m.name for m in rest.resource_metrics[0].scope_metrics[0].metrics] == \
        ["steward.inference.latency"]
    result = metrics_and_gpu(req, T0)
    points = [r for r in result.records if isinstance(r, MetricPoint)]
    assert [(p.name, p.value, p.model) for p in points] == \
        [("steward.inference.latency", 12.5, "dcgm-scraper")]
    [gpu] = [r for r in result.records if isinstance(r, GpuSample)]
    assert (gpu.profile, gpu.compute_active) == ("full", 0.75)


def test_a_request_without_gpu_metrics_is_not_copied() -> None:
    req = parse_metrics(b'{"resourceMetrics": []}', "application/json")
    assert split_gpu(req) == ([], req)


def test_bad_gpu_points_are_rejected_alone() -> None:
    rows = [(n, {**labels, "GPU_I_PROFILE": "9g.90gb"}, v, ts)
            for n, labels, v, ts in h100_rows()[:4]] + a100_rows()[:4]
    result = metrics_and_gpu(_request(rows), T0)
    assert result.rejected == 1
    assert "unknown MIG profile '9g.90gb' for H100-80GB" in result.errors[0]
    assert len(result.records) == 1
