"""GPU usage against promise, per partition window: every figure worked out by hand from
the DCGM fixtures (tests/gpu_support.py), alerts exactly once per partition and window."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from processors.gpu_usage import GpuSpec, GpuUsage, partition_id, values_copied
from steward import topics as T
from steward.gpu.dcgm import parse_text, to_samples
from steward.gpu.prices import Catalogue
from steward.gpu.promises import Promise
from steward.schema import EventType, GpuSample, event_id
from steward.stream import Source, run_steps
from tests.gpu_support import (
    A100_UUID,
    H100_UUID,
    T0,
    a100_rows,
    exposition,
    h100_rows,
)

REPO = Path(__file__).resolve().parents[2]
MIB, GIB = 2**20, 2**30
H100_MIN = 7.0 * 60 / 3600  # the example catalogue: an H100 minute at eu-west-1 (on-demand)
A100_MIN = 3.5 * 60 / 3600
CLOSED = T0 + timedelta(seconds=61)
H100 = f"gpu-node-1/{H100_UUID}"
A100 = f"gpu-node-2/{A100_UUID}"


def samples(rows: list, shared_data: Path, shift: timedelta = timedelta(0)) -> list[GpuSample]:
    rows = [(n, lab, v, ts + shift) for n, lab, v, ts in rows]
    parsed = to_samples(parse_text(exposition(rows, shared_data)), T0, {"site": "eu-west-1"})
    assert parsed.rejected == []
    return parsed.samples


def run(records: list[GpuSample], catalogue: Catalogue | None = None,
        **spec: object) -> tuple[dict, list]:
    proc = GpuUsage(GpuSpec(window_s=60, grace_s=0, **spec), catalogue)
    _, emits = run_steps(proc, records, CLOSED)
    usage = {e.record.partition: e.record for e in emits if e.topic is T.GPU_USAGE}
    alerts = [e.event for e in emits if e.topic is T.ALERTS]
    return usage, alerts


def test_mig_partitions_normalised_by_their_share_of_the_card(shared_data: Path) -> None:
    usage, _ = run(samples(h100_rows(), shared_data))
    assert sorted(usage) == [f"{H100}/mig{i}" for i in (1, 10, 5, 9)]
    fraud = usage[f"{H100}/mig1"]
    assert (fraud.samples, fraud.profile, fraud.team, fraud.model) == \
        (2, "3g.40gb", "risk", "fraud-detector")
    assert (fraud.compute_share, fraud.memory_share) == (3 / 7, 0.5)
    assert fraud.compute_use == (0.6 + 0.8) / 2
    assert fraud.compute_card_use == 0.7 * (3 / 7)  # 0.3 of the card
    assert fraud.compute_vs_promise == 0.7 * (3 / 7) / (3 / 7)
    assert fraud.dram_use == (0.3 + 0.5) / 2
    assert (fraud.mem_used_max_bytes, fraud.mem_total_bytes) == (30000 * MIB, 40960 * MIB)
    assert fraud.mem_use_max == 30000 / 40960  # 0.732421875
    assert (fraud.promised_compute, fraud.promised_memory_bytes) == (3 / 7, 40 * GIB)
    embed = usage[f"{H100}/mig9"]
    assert (embed.compute_use, embed.compute_card_use) == ((0.1 + 0.3) / 2, 0.2 * (1 / 7))
    idle = usage[f"{H100}/mig10"]
    assert (idle.compute_use, idle.compute_card_use, idle.mem_use_max) == (0.0, 0.0, 512 / 10240)
    # a 1g slice busy 20% and a 3g slice busy 70%: 0.0286 and 0.3 of the card
    assert sum(u.compute_card_use for u in usage.values()) == \
        0.7 * (3 / 7) + 1.0 * (2 / 7) + 0.2 * (1 / 7) + 0.0 * (1 / 7)


def test_timesliced_copies_are_flagged_not_double_counted(shared_data: Path) -> None:
    usage, alerts = run(samples(a100_rows(), shared_data))
    assert sorted(usage) == [f"{A100}/ts/ml/rec-{i}" for i in range(3)]
    for u in usage.values():
        assert (u.values_copied, u.compute_use, u.compute_card_use, u.mem_use_max) == \
            (True, None, None, None)
        assert u.device_compute_use == (0.75 + 0.25) / 2
        assert (u.compute_share, u.promised_compute) == (1 / 3, 1 / 3)
        assert u.power_watts_mean == 300.0
    assert alerts == []


def test_timesliced_pods_with_their_own_values_are_not_flagged(shared_data: Path) -> None:
    rows = [(n, lab, v + (1 if lab["pod"] == "rec-1" and n.endswith("GPU_UTIL") else 0), ts)
            for n, lab, v, ts in a100_rows()]
    usage, _ = run(samples(rows, shared_data))
    rec1 = usage[f"{A100}/ts/ml/rec-1"]
    assert (rec1.values_copied, rec1.compute_use) == (False, (0.76 + 0.26) / 2)
    assert rec1.compute_card_use == (0.76 + 0.26) / 2 * (1 / 3)


def _kinds(alerts: list) -> list[tuple[str, str]]:
    return sorted((a.get_type(), a.get_subject()) for a in alerts)


def test_default_promises_raise_only_the_memory_pressure_of_the_full_slice(
        shared_data: Path) -> None:
    _, alerts = run(samples(h100_rows(), shared_data))
    assert _kinds(alerts) == [(EventType.GPU_MEMORY_PRESSURE, f"{H100}/mig5")]
    data = alerts[0].get_data()
    assert (data["measured"], data["threshold"]) == (19800 / 20480, 0.95)  # 0.966796875


def test_a_starved_partition_alerts_once_per_window(shared_data: Path) -> None:
    """chat is promised 3/7 of the card but runs in a 2g slice: busy 100%, it gets 2/7."""
    first = samples(h100_rows(), shared_data)
    second = samples(h100_rows(), shared_data, shift=timedelta(minutes=1))
    promises = [Promise(model="chat", compute=3 / 7)]
    proc = GpuUsage(GpuSpec(window_s=60, grace_s=0, promises=promises))
    # the first window twice (a redelivery), then the next window
    _, emits = run_steps(proc, first + first + second, CLOSED + timedelta(minutes=1))
    starved = [e.event for e in emits if e.topic is T.ALERTS
               and e.event.get_type() == EventType.GPU_STARVED]
    assert len(starved) == 2
    assert [a.get_id() for a in starved] == [
        event_id(EventType.GPU_STARVED, "starved", f"{H100}/mig5", start.isoformat())
        for start in (T0, T0 + timedelta(minutes=1))]
    data = starved[0].get_data()
    assert (data["measured"], data["threshold"], data["compute_use"]) == (2 / 7, 3 / 7, 1.0)
    assert (data["team"], data["model"], data["window"]["start"]) == \
        ("assistants", "chat", "2025-01-06T10:00:00Z")
    usage = [e.record for e in emits if e.topic is T.GPU_USAGE]
    assert [u.samples for u in usage if u.partition == f"{H100}/mig5"] == [2, 2]


def test_promising_more_than_the_card_is_oversubscribed(shared_data: Path) -> None:
    _, alerts = run(samples(a100_rows(), shared_data),
                    promises=[Promise(gpu_uuid=A100_UUID, compute=0.5)])
    assert _kinds(alerts) == [(EventType.GPU_OVERSUBSCRIBED, A100)]
    data = alerts[0].get_data()
    assert (data["measured"], data["partitions"]) == \
        (1.5, [f"{A100}/ts/ml/rec-{i}" for i in range(3)])


def test_promised_memory_above_use_is_memory_pressure(shared_data: Path) -> None:
    _, alerts = run(samples(h100_rows(), shared_data),
                    promises=[Promise(model="fraud-detector", memory_bytes=25000 * MIB)])
    assert ("steward.gpu.partition.memory_pressure", f"{H100}/mig1") in _kinds(alerts)


def test_unknown_profile_raises_for_the_dead_letter_topic() -> None:
    bad = GpuSample(ts=T0, site="s", tier="cloud", node="n", gpu_uuid="GPU-1",
                    card="H100-80GB", profile="5g.50gb", instance_id=1)
    proc = GpuUsage(GpuSpec())
    with pytest.raises(ValueError, match=r"unknown MIG profile '5g\.50gb'"):
        proc.step(proc.initial_state(), bad, T0, Source("t", 0, 0))


def test_partition_ids() -> None:
    base = {"ts": T0, "site": "s", "tier": "cloud", "node": "n", "gpu_uuid": "G"}
    assert partition_id(GpuSample(**base)) == "n/G"
    assert partition_id(GpuSample(**base, instance_id=3, profile="1g.10gb")) == "n/G/mig3"
    assert partition_id(GpuSample(**base, profile="timeslice", pod="p", namespace="ns")) == \
        "n/G/ts/ns/p"
    assert values_copied({}) is False


def r(x: float | None) -> float | None:
    return None if x is None else round(x, 12)


def _money(data: dict) -> tuple:
    return tuple(r(data[k]) for k in ("usd_per_gpu_hour", "card_usd", "allocated_usd",
                                      "used_usd", "idle_usd"))


def test_partition_alerts_carry_the_windows_cost(shared_data: Path) -> None:
    """chat, promised 3/7 in its 2g slice, is starved and at its memory ceiling: it holds
    2/7 of an H100 minute and used all of it; fraud-detector, over a memory promise,
    holds 3/7 and used 0.7 of that."""
    prices = Catalogue.load(REPO / "config" / "gpu-prices.toml")
    promises = [Promise(model="chat", compute=3 / 7),
                Promise(model="fraud-detector", memory_bytes=25000 * MIB)]
    records = samples(h100_rows(), shared_data)
    _, alerts = run(records, prices, promises=promises)
    got = {(a.get_type(), a.get_subject()): a.get_data() for a in alerts}
    chat = H100_MIN * 2 / 7  # 1/30 $
    for kind in (EventType.GPU_STARVED, EventType.GPU_MEMORY_PRESSURE):
        data = got[(kind, f"{H100}/mig5")]
        assert _money(data) == (7.0, r(H100_MIN), r(chat), r(chat), 0.0)
        assert (data["compute_card_use"], data["mem_use_max"]) == (2 / 7, 19800 / 20480)
    fraud = got[(EventType.GPU_MEMORY_PRESSURE, f"{H100}/mig1")]
    assert _money(fraud) == (7.0, r(H100_MIN), r(H100_MIN * 3 / 7),  # 0.05 $
                             r(H100_MIN * 0.7 * 3 / 7), r(H100_MIN * 0.3 * 3 / 7))
    assert (fraud["compute_card_use"], fraud["mem_use_max"]) == (0.7 * (3 / 7), 30000 / 40960)
    _, unpriced = run(records, promises=promises)  # no catalogue: no dollars, same ids
    assert [a.get_id() for a in unpriced] == [a.get_id() for a in alerts]
    assert all(_money(a.get_data()) == (None,) * 5 for a in unpriced)


def test_an_oversubscribed_card_carries_every_partitions_cost(shared_data: Path) -> None:
    """Three time-sliced replicas, each 1/3 of the A100, values copied: the card's
    minute is allocated in full and used at the device's 50%, counted once."""
    prices = Catalogue.load(REPO / "config" / "gpu-prices.toml")
    _, alerts = run(samples(a100_rows(), shared_data), prices,
                    promises=[Promise(gpu_uuid=A100_UUID, compute=0.5)])
    [data] = [a.get_data() for a in alerts]
    assert data["kind"] == "oversubscribed"
    assert _money(data) == (3.5, r(A100_MIN), r(A100_MIN), r(A100_MIN * 0.5),
                            r(A100_MIN * 0.5))


def test_usage_records_carry_their_cost_and_health(shared_data: Path) -> None:
    """The rollout judge's inputs: chat's 2g slice holds 2/7 of an H100 minute, used in
    full, and is starved and at its memory ceiling; its promise of 3/7 makes the card
    promised 8/7 (3g + 2g + 1g + 1g held), so every slice of it is on an oversubscribed
    card. Every A100 replica holds 1/3 of an A100 minute, promised 1/2 each."""
    prices = Catalogue.load(REPO / "config" / "gpu-prices.toml")
    usage, _ = run(samples(h100_rows(), shared_data), prices,
                   promises=[Promise(model="chat", compute=3 / 7)])
    chat = usage[f"{H100}/mig5"]
    assert (r(chat.allocated_usd), r(chat.used_usd)) == (r(H100_MIN * 2 / 7),) * 2
    assert chat.breaches == ["starved", "memory_pressure", "oversubscribed"]
    fraud = usage[f"{H100}/mig1"]
    assert (r(fraud.allocated_usd), fraud.breaches) == (r(H100_MIN * 3 / 7), ["oversubscribed"])
    healthy, _ = run(samples(h100_rows(), shared_data), prices)
    assert healthy[f"{H100}/mig1"].breaches == []
    replicas, _ = run(samples(a100_rows(), shared_data), prices,
                      promises=[Promise(gpu_uuid=A100_UUID, compute=0.5)])
    assert {(r(u.allocated_usd), tuple(u.breaches)) for u in replicas.values()} == \
        {(r(A100_MIN / 3), ("oversubscribed",))}
    unpriced, _ = run(samples(h100_rows(), shared_data))
    assert unpriced[f"{H100}/mig5"].allocated_usd is None
