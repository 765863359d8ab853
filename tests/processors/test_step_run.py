"""`step_run` (a whole Kafka message at once) must leave the same state and emit the same
records, in the same order, as `step` record by record: checked on random traces with
late records, quiet closes, duplicates, several windows and versions per message."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from processors.fleet_sightings import FleetSightings, SightingsSpec
from processors.rollout_samples import RolloutSamples, SamplesSpec
from processors.windows import runs
from steward.schema import InferenceRecord
from steward.schema.records import Hardware
from steward.stream import Source

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def record(r: random.Random, n: int, site: str, t: float) -> InferenceRecord:
    return InferenceRecord(
        id=f"r{n if r.random() > 0.05 else n - 1}", model="m", version=r.choice("12"),
        site=site, tier=r.choice(["edge", "cloud"]), node=r.choice(["a", "b", None]),
        ts=T0 + timedelta(seconds=t), latency_ms=round(r.uniform(1, 50), 3),
        sample_rate=r.choice([1.0, 0.5, 0.1]), error=r.random() < 0.1,
        label=r.choice([None, 0, 1]), prediction=r.choice([0, 1]),
        hardware=r.choice([None, Hardware(accelerator=r.choice(["L4", "A100-80GB"]))]),
        agent_backlog=r.choice([None, r.randrange(100)]))


def trace(seed: int) -> list[tuple]:
    """("msg", site, [records], now) and ("tick", now): messages of up to 40 records of one
    site, event times around the arrival time, some far behind (late)."""
    r, t, n, out = random.Random(seed), 0.0, 0, []
    for _ in range(120):
        t += r.expovariate(1.0)
        site = r.choice(["s1", "s2"])
        recs = []
        for _ in range(r.randrange(1, 40)):
            n += 1
            lag = r.uniform(20, 60) if r.random() < 0.1 else r.uniform(0, 4)
            recs.append(record(r, n, site, t - lag))
        out.append(("msg", site, recs, T0 + timedelta(seconds=t)))
        if r.random() < 0.2:
            out.append(("tick", T0 + timedelta(seconds=t + r.uniform(0, 30))))
    return out


def fold(stage, events: list[tuple], whole: bool) -> tuple[list[str], object]:
    state, out = stage.initial_state(), []
    for offset, event in enumerate(events):
        if event[0] == "tick":
            state, emits = stage.tick(state, event[1])
        elif whole:
            state, emits = stage.step_run(state, event[2], event[3], Source("t", 0, offset))
        else:
            emits = []
            for i, rec in enumerate(event[2]):
                state, more = stage.step(state, rec, event[3], Source("t", 0, offset, None, i))
                emits += more
        out += [e.record.model_dump_json() for e in emits]
    return out, state


def windows_of(state) -> dict:
    w = state.windows
    return {"open": {k: repr(v) for k, v in w.open.items()}, "held": w.held,
            "watermark": w.watermark, "late": w.late, "reach": w.reach,
            "spans": {tuple(sorted(s.items())) for s in w.spans},  # a range once or twice: same
            "quiet_until": w.quiet_until, "hold": w.hold()}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("stage", [
    lambda: RolloutSamples(SamplesSpec(bucket_s=5, grace_s=2.0, max_latencies=30)),
    lambda: FleetSightings(SightingsSpec(bucket_s=5, grace_s=2.0)),
], ids=["rollout-samples", "fleet-sightings"])
def test_step_run_equals_step_by_step(stage, seed: int) -> None:
    events = trace(seed)
    one, state_one = fold(stage(), events, whole=False)
    run, state_run = fold(stage(), events, whole=True)
    assert state_one.windows.late > 0 and len(one) > 20  # the trace exercises what it should
    assert run == one
    assert windows_of(state_run) == windows_of(state_one)


def test_runs_split_where_key_or_window_changes() -> None:
    r = random.Random(1)
    recs = [record(r, 1, "s1", 0.5), record(r, 2, "s1", 4.9), record(r, 3, "s1", 5.0),
            record(r, 4, "s2", 5.1), record(r, 5, "s1", 9.99)]
    got = [(key, start, [x.id for x in rs]) for key, start, rs in runs(recs, 5)]
    assert got == [(("m", "s1"), T0, ["r1", "r2"]),
                   (("m", "s1"), T0 + timedelta(seconds=5), ["r3"]),
                   (("m", "s2"), T0 + timedelta(seconds=5), ["r4"]),
                   (("m", "s1"), T0 + timedelta(seconds=5), ["r5"])]
