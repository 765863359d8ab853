"""NVML sampling: the no-GPU path said clearly, and MIG instances named from what NVML
reports. Reading a real card runs only where one exists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from steward.cli import app
from steward.gpu import nvml


def _has_gpu() -> bool:
    try:
        nvml.open_nvml()
    except nvml.NoGpu:
        return False
    return True


HAS_GPU = _has_gpu()


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_without_a_gpu_open_says_why() -> None:
    with pytest.raises(nvml.NoGpu, match="no NVIDIA driver or GPU on this machine"):
        nvml.open_nvml()


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_sampler_without_a_gpu_exits_3_with_a_clear_message() -> None:
    result = CliRunner().invoke(app, ["gpu-sampler", "--site", "eu-west-1", "--once"])
    assert result.exit_code == 3
    assert "error: nothing to sample: no NVIDIA driver or GPU on this machine" in result.output


@pytest.mark.parametrize(("card", "slices", "mb", "name"), [
    ("H100-80GB", 3, 40192, "3g.40gb"), ("H100-80GB", 1, 9856, "1g.10gb"),
    ("H100-80GB", 1, 19968, "1g.20gb"), ("H100-80GB", 7, 80896, "7g.80gb"),
    ("A100-40GB", 1, 4864, "1g.5gb"), ("H200-141GB", 2, 35584, "2g.35gb"),
])
def test_mig_profile_from_slices_and_usable_memory(card: str, slices: int, mb: int,
                                                   name: str) -> None:
    assert nvml.mig_profile(card, slices, mb) == name


def test_mig_profile_of_an_unknown_card_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown card 'T4'"):
        nvml.mig_profile("T4", 1, 4000)


@pytest.mark.skipif(not HAS_GPU, reason="needs an NVIDIA GPU and driver")
def test_reads_every_card_or_instance_on_a_gpu_machine() -> None:
    handle = nvml.open_nvml()
    who = nvml.Identity(site="lab", tier="cloud", node="gpu-box")
    samples = nvml.read_samples(handle, who, datetime.now(UTC))
    assert samples and all(s.gpu_uuid.startswith(("GPU-", "MIG-")) for s in samples)
    for s in samples:
        assert s.mem_total_bytes and 0 <= s.mem_used_bytes <= s.mem_total_bytes
        if s.profile == "full":
            assert s.compute_active is not None and s.power_watts is not None
