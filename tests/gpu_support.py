"""GPU fixtures shared by the collector, processor and API tests: DCGM exporter text for
a MIG-partitioned H100 (mixed profiles) and a time-sliced A100, with HELP/TYPE lines
taken from the exporter's own metric list (shared/data/dcgm), values chosen so every
figure the tests check can be worked out by hand."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2025, 1, 6, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=30)
H100_UUID = "GPU-5fd4c2a1-7e3b-4c1d-9a2f-0b1c2d3e4f50"
A100_UUID = "GPU-a1b2c3d4-0000-4000-8000-00000000ts01"

# GPU instance id -> (profile, pod, model, team, FB total MiB, readings at T0 and T1:
# (GR_ENGINE_ACTIVE ratio, DRAM_ACTIVE ratio, FB_USED MiB))
H100_PARTITIONS = {
    1: ("3g.40gb", "fraud-0", "fraud-detector", "risk", 40960,
        [(0.60, 0.30, 20000), (0.80, 0.50, 30000)]),
    5: ("2g.20gb", "chat-0", "chat", "assistants", 20480,
        [(1.00, 0.90, 19000), (1.00, 0.70, 19800)]),
    9: ("1g.10gb", "embed-0", "embedder", "search", 10240,
        [(0.10, 0.05, 1024), (0.30, 0.15, 1024)]),
    10: ("1g.10gb", "embed-1", "embedder", "search", 10240,
         [(0.00, 0.00, 512), (0.00, 0.00, 512)]),
}
A100_PODS = ("rec-0", "rec-1", "rec-2")
A100_READINGS = [(75, 30000), (25, 30000)]  # GPU_UTIL %, FB_USED MiB (FB total 81920 MiB)


def csv_fields(shared_data: Path) -> dict[str, tuple[str, str]]:
    """name -> (type, help) for every field the exporter's list enables."""
    out = {}
    for line in (shared_data / "dcgm" / "dcp-metrics-included.csv").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, kind, text = (p.strip() for p in line.split(",", 2))
            out[name] = (kind, text)
    return out


def exposition(rows: list[tuple[str, dict[str, str], float, datetime | None]],
               shared_data: Path) -> str:
    """Prometheus text as the exporter writes it: HELP and TYPE per family, then series."""
    fields = csv_fields(shared_data)
    by_name: dict[str, list[str]] = defaultdict(list)
    for name, labels, value, ts in rows:
        body = ",".join(f'{k}="{v}"' for k, v in labels.items())
        stamp = f" {int(ts.timestamp() * 1000)}" if ts else ""
        by_name[name].append(f"{name}{{{body}}} {value}{stamp}")
    lines = []
    for name, series in by_name.items():
        kind, text = fields[name]
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *series]
    return "\n".join(lines) + "\n"


def _base(uuid: str, model_name: str, host: str, gpu: str = "0") -> dict[str, str]:
    return {"gpu": gpu, "UUID": uuid, "pci_bus_id": "00000000:19:00.0", "device": "nvidia0",
            "modelName": model_name, "Hostname": host,
            "DCGM_FI_DRIVER_VERSION": "550.54.15"}


def h100_rows() -> list[tuple[str, dict[str, str], float, datetime | None]]:
    """The MIG H100: four instances (3g + 2g + 1g + 1g = 7 sevenths) at T0 and T1, plus the
    device's power, which belongs to no instance."""
    base = _base(H100_UUID, "NVIDIA H100 80GB HBM3", "gpu-node-1")
    rows = []
    for gi, (profile, pod, model, team, total, readings) in H100_PARTITIONS.items():
        labels = {**base, "GPU_I_PROFILE": profile, "GPU_I_ID": str(gi), "container": "server",
                  "namespace": "ml", "pod": pod, "model": model, "version": "1.0",
                  "team": team}
        for ts, (busy, dram, used) in zip((T0, T1), readings, strict=True):
            rows += [("DCGM_FI_PROF_GR_ENGINE_ACTIVE", labels, busy, ts),
                     ("DCGM_FI_PROF_DRAM_ACTIVE", labels, dram, ts),
                     ("DCGM_FI_DEV_FB_USED", labels, used, ts),
                     ("DCGM_FI_DEV_FB_FREE", labels, total - used, ts)]
    for ts in (T0, T1):
        rows.append(("DCGM_FI_DEV_POWER_USAGE", base, 450.0, ts))
        rows.append(("DCGM_FI_DEV_GPU_TEMP", base, 61.0, ts))
    return rows


def a100_rows() -> list[tuple[str, dict[str, str], float, datetime | None]]:
    """The time-sliced A100: three pods, each series the device's value copied."""
    base = _base(A100_UUID, "NVIDIA A100-SXM4-80GB", "gpu-node-2")
    rows = []
    for pod in A100_PODS:
        labels = {**base, "container": "server", "namespace": "ml", "pod": pod,
                  "model": "recommender", "version": "2.1", "team": "growth"}
        for ts, (util, used) in zip((T0, T1), A100_READINGS, strict=True):
            rows += [("DCGM_FI_DEV_GPU_UTIL", labels, util, ts),
                     ("DCGM_FI_DEV_FB_USED", labels, used, ts),
                     ("DCGM_FI_DEV_FB_FREE", labels, 81920 - used, ts),
                     ("DCGM_FI_DEV_POWER_USAGE", labels, 300.0, ts)]
    return rows


def otlp_json(rows: list[tuple[str, dict[str, str], float, datetime | None]],
              resource: dict[str, str]) -> dict:
    """The same series as an OTLP metrics export, as an OpenTelemetry Collector scraping the
    exporter sends them: one gauge per field, labels as data-point attributes."""
    by_name: dict[str, list[dict]] = defaultdict(list)
    for name, labels, value, ts in rows:
        by_name[name].append({
            "timeUnixNano": str(int(ts.timestamp()) * 10**9) if ts else "0",
            "asDouble": value,
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in labels.items()]})
    return {"resourceMetrics": [{
        "resource": {"attributes": [{"key": k, "value": {"stringValue": v}}
                                    for k, v in resource.items()]},
        "scopeMetrics": [{"metrics": [{"name": n, "gauge": {"dataPoints": points}}
                                      for n, points in by_name.items()]}]}]}
