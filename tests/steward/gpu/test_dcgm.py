"""DCGM exporter text -> GPU samples: alias map by field id, units, labels, rejections."""

from __future__ import annotations

from pathlib import Path

import pytest

from steward.gpu.dcgm import BY_NAME, FIELDS, Series, normalise, parse_text, to_samples
from tests.gpu_support import (
    A100_UUID,
    H100_UUID,
    T0,
    T1,
    a100_rows,
    csv_fields,
    exposition,
    h100_rows,
)

MIB = 2**20
SCRAPE = {"site": "eu-west-1", "tier": "cloud"}


def test_alias_map_is_keyed_on_field_id_with_old_and_new_names() -> None:
    assert FIELDS[1001].names[0] == ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "ratio")
    assert BY_NAME["DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO"][0].id == 1001
    assert BY_NAME["DCGM_FI_PROF_DRAM_ACTIVE"][0].id == 1005
    assert {BY_NAME[n][0].id for n in ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_USED_BYTES")} \
        == {252}


def test_every_field_steward_reads_is_in_the_exporters_list(shared_data: Path) -> None:
    listed = csv_fields(shared_data)
    legacy = {spec.names[0][0] for spec in FIELDS.values()} - {"DCGM_FI_DEV_FB_TOTAL"}
    assert legacy <= set(listed)
    assert "(in MiB)" in listed["DCGM_FI_DEV_FB_USED"][1]  # why legacy FB is MiB
    assert "(in %)" in listed["DCGM_FI_DEV_GPU_UTIL"][1]


@pytest.mark.parametrize(("name", "value", "out"), [
    ("DCGM_FI_DEV_FB_USED", 1024, ("mem_used", 1024 * MIB)),
    ("DCGM_FI_DEV_FB_USED_BYTES", 1024 * MIB, ("mem_used", 1024 * MIB)),
    ("DCGM_FI_DEV_GPU_UTIL", 75, ("gpu_util", 0.75)),
    ("DCGM_FI_DEV_GPU_UTIL_RATIO", 0.75, ("gpu_util", 0.75)),
    ("DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO", 0.5, ("compute_active", 0.5)),
    ("DCGM_FI_DEV_BOARD_POWER_WATTS", 300.5, ("power_watts", 300.5)),
])
def test_units_are_normalised_old_and_new(name: str, value: float, out: tuple) -> None:
    assert normalise(name, value) == out


@pytest.mark.parametrize(("name", "value", "why"), [
    ("DCGM_FI_DEV_FB_USED", -1, "negative"), ("DCGM_FI_DEV_GPU_UTIL", 140, "above 100"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 1.5, "ratio above 1"),
    ("DCGM_FI_PROF_DRAM_ACTIVE", float("nan"), "NaN"),
])
def test_impossible_values_are_refused(name: str, value: float, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        normalise(name, value)


def test_mig_h100_becomes_one_sample_per_instance_and_instant(shared_data: Path) -> None:
    text = exposition(h100_rows(), shared_data)
    parsed = to_samples(parse_text(text), T0, SCRAPE)
    assert parsed.rejected == []
    assert parsed.ignored == 4  # GPU_TEMP x2 (not read), device POWER_USAGE x2 (no instance)
    by = {(s.instance_id, s.ts): s for s in parsed.samples}
    assert len(by) == 8
    fraud = by[(1, T1)]
    assert (fraud.card, fraud.profile, fraud.gpu_uuid, fraud.node, fraud.site) == \
        ("H100-80GB", "3g.40gb", H100_UUID, "gpu-node-1", "eu-west-1")
    assert (fraud.pod, fraud.namespace, fraud.model, fraud.team, fraud.gpu_index) == \
        ("fraud-0", "ml", "fraud-detector", "risk", 0)
    assert (fraud.compute_active, fraud.dram_active) == (0.8, 0.5)
    assert (fraud.mem_used_bytes, fraud.mem_total_bytes) == (30000 * MIB, 40960 * MIB)
    assert fraud.power_watts is None  # the device's power is no instance's


def test_timesliced_pods_are_replicas_of_the_device(shared_data: Path) -> None:
    parsed = to_samples(parse_text(exposition(a100_rows(), shared_data)), T0, SCRAPE)
    assert parsed.rejected == [] and len(parsed.samples) == 6
    first = next(s for s in parsed.samples if s.ts == T0)
    assert (first.card, first.profile, first.replicas, first.gpu_uuid) == \
        ("A100-80GB", "timeslice", 3, A100_UUID)
    assert {s.compute_active for s in parsed.samples if s.ts == T0} == {0.75}
    assert first.power_watts == 300.0


def test_series_without_timestamp_take_now() -> None:
    s = Series("DCGM_FI_DEV_GPU_UTIL", {"UUID": "GPU-9", "Hostname": "n"}, 50)
    [sample] = to_samples([s], T1, SCRAPE).samples
    assert (sample.ts, sample.profile, sample.compute_active) == (T1, "full", 0.5)


@pytest.mark.parametrize(("labels", "value", "why"), [
    ({"Hostname": "n"}, 50, "missing label(s): gpu_uuid (label UUID or uuid)"),
    ({"UUID": "GPU-9"}, 50, "missing label(s): node (label hostname or Hostname)"),
    ({"UUID": "GPU-9", "Hostname": "n", "modelName": "NVIDIA H100 80GB HBM3",
      "GPU_I_PROFILE": "2g.30gb", "GPU_I_ID": "3"}, 50, "unknown MIG profile '2g.30gb'"),
    ({"UUID": "GPU-9", "Hostname": "n"}, -3, "negative"),
])
def test_bad_groups_are_rejected_alone_with_the_reason(labels: dict, value: float,
                                                       why: str) -> None:
    good = Series("DCGM_FI_DEV_GPU_UTIL", {"UUID": "GPU-ok", "Hostname": "n"}, 10)
    parsed = to_samples([good, Series("DCGM_FI_DEV_GPU_UTIL", labels, value)], T0, SCRAPE)
    assert [s.gpu_uuid for s in parsed.samples] == ["GPU-ok"]
    [(reason, raw)] = parsed.rejected
    assert why in reason
    assert raw["series"][0]["value"] == value


def test_missing_site_is_rejected() -> None:
    s = Series("DCGM_FI_DEV_GPU_UTIL", {"UUID": "GPU-9", "Hostname": "n"}, 50)
    [(reason, _)] = to_samples([s], T0).rejected
    assert reason.startswith("missing label(s): site")


def test_not_an_exposition_raises() -> None:
    with pytest.raises(ValueError):
        parse_text("DCGM_FI_DEV_GPU_UTIL{UUID=\"x\" 5\n")
