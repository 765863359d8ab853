"""Promises from config: first match wins, unset figures default to the slice's share."""

from __future__ import annotations

from steward.gpu.inventory import slice_of
from steward.gpu.promises import Promise, Promised, promised
from steward.schema import GpuSample
from tests.gpu_support import T0

GIB = 2**30


def _mig(instance: int, profile: str, team: str) -> GpuSample:
    return GpuSample(ts=T0, site="s", tier="cloud", node="n1", gpu_uuid="GPU-1",
                     card="H100-80GB", profile=profile, instance_id=instance, team=team)


def test_no_promise_means_the_slice_share() -> None:
    s = _mig(1, "3g.40gb", "risk")
    assert promised(s, slice_of(s), []) == Promised(3 / 7, 40 * GIB)


def test_first_matching_promise_wins_and_fills_only_what_it_sets() -> None:
    promises = [Promise(team="risk", instance_id=1, compute=4 / 7, latency_slo_ms=50),
                Promise(team="risk", memory_bytes=10 * GIB)]
    s1, s2 = _mig(1, "3g.40gb", "risk"), _mig(2, "2g.20gb", "risk")
    assert promised(s1, slice_of(s1), promises) == Promised(4 / 7, 40 * GIB, 50)
    assert promised(s2, slice_of(s2), promises) == Promised(2 / 7, 10 * GIB)
    other = _mig(3, "1g.10gb", "search")
    assert promised(other, slice_of(other), promises) == Promised(1 / 7, 10 * GIB)


def test_timeslice_replica_defaults_to_one_over_replicas() -> None:
    s = GpuSample(ts=T0, site="s", tier="cloud", node="n2", gpu_uuid="GPU-2", card="A100-80GB",
                  profile="timeslice", pod="rec-0", replicas=3)
    assert promised(s, slice_of(s), []) == Promised(1 / 3, 80 * GIB)
