"""Stages run as one consumer (`Composite`) emit exactly what each emits alone, hold
back what the neediest of them needs, and keep going when one of them fails."""

from __future__ import annotations

import base64

import pytest

from processors.canary_latency import CanaryLatency, CanarySpec
from processors.fleet_sightings import FleetSightings, SightingsSpec
from processors.registry import build
from processors.rollout_samples import RolloutSamples, SamplesSpec
from processors.settings import ProcessorSettings
from steward import topics as T
from steward.bus.composite import Composite
from steward.schema import DeadLetter, InferenceRecord
from steward.stream import Source
from tests.processors.test_step_run import trace

TOPIC = "pfx." + T.INFERENCE.name  # a deployment prefix: stages still find their inputs
SPEC = CanarySpec(model="m", baseline_version="1", canary_version="2", site="s1",
                  factor=1.2, window_s=5, grace_s=1.0, min_samples=3)


def stages():
    return [RolloutSamples(SamplesSpec(bucket_s=5, grace_s=2.0)),
            FleetSightings(SightingsSpec(bucket_s=5, grace_s=2.0)), CanaryLatency([SPEC])]


def feed(proc, events, whole: bool = True):
    state, out, holds = proc.initial_state(), [], []
    for offset, event in enumerate(events):
        if event[0] == "tick":
            state, emits = proc.tick(state, event[1])
        else:
            src = Source(TOPIC, 0, offset, f"m/{event[1]}".encode())
            if whole and hasattr(proc, "step_run"):
                state, emits = proc.step_run(state, event[2], event[3], src)
            else:
                emits = []
                for i, rec in enumerate(event[2]):
                    state, more = proc.step(state, rec, event[3], src._replace(index=i))
                    emits += more
        out += emits
        holds.append(proc.hold(state))
    return out, holds


def dumps(emits, topic):
    return [e.record.model_dump_json() if e.record is not None else e.event.get_id()
            for e in emits if e.topic == topic]


@pytest.mark.parametrize("seed", range(6))
def test_each_stage_emits_what_it_emits_alone(seed: int) -> None:
    events = trace(seed)
    together, holds = feed(Composite(stages()), events)
    alone = [feed(stage, events, whole=False) for stage in stages()]
    for (emits, _), topic in zip(alone, (T.ROLLOUT_SAMPLES, T.FLEET_SIGHTINGS, T.PROPOSALS),
                                 strict=True):
        assert dumps(together, topic) == dumps(emits, topic)
    assert dumps(together, T.PROPOSALS)  # the canary did roll back: the trace exercises it
    for i, hold in enumerate(holds):  # the lowest offset any of them still needs
        wanted = [h[i][TOPIC] for _, h in alone if TOPIC in h[i]]
        assert hold == ({TOPIC: min(wanted)} if wanted else {})


class Failing(FleetSightings):
    def step(self, state, record, now, src):
        if record.id == "r5":
            raise ValueError("r5 is bad")
        return super().step(state, record, now, src)

    step_run = None


def test_a_failing_stage_dead_letters_for_itself_only() -> None:
    events = trace(0)[:30]
    bad = [r for e in events if e[0] == "msg" for r in e[2] if r.id == "r5"]
    assert bad  # the record exists in the trace
    together, _ = feed(Composite([RolloutSamples(SamplesSpec(bucket_s=5, grace_s=2.0)),
                                  Failing(SightingsSpec(bucket_s=5, grace_s=2.0))]), events)
    letters = [e.record for e in together if e.topic == T.DEADLETTER]
    assert [(d.stage, d.reason, d.topic, d.record_index) for d in letters] == [
        ("fleet-sightings", "processing failed: ValueError: r5 is bad", TOPIC,
         next(i for e in events if e[0] == "msg" for i, r in enumerate(e[2])
              if r.id == "r5"))]
    assert InferenceRecord.model_validate_json(
        base64.b64decode(letters[0].payload_b64)).id == "r5"
    alone, _ = feed(RolloutSamples(SamplesSpec(bucket_s=5, grace_s=2.0)), events, whole=False)
    assert dumps(together, T.ROLLOUT_SAMPLES) == dumps(alone, T.ROLLOUT_SAMPLES)
    assert isinstance(letters[0], DeadLetter)


def test_registry_builds_plus_names_and_keys_are_decoded_when_any_stage_may_use_them() -> None:
    proc = build("canary-latency+rollout-samples",
                 ProcessorSettings(canaries=[SPEC.model_dump()]))
    assert proc.name == "canary-latency+rollout-samples"
    assert {t.name for t in proc.inputs} == {T.INFERENCE.name, T.METRICS.name}
    assert proc.accepts(T.INFERENCE, b"other/s9")  # rollout-samples takes every model
    assert proc.accepts(T.METRICS, b"m/s1") and not proc.accepts(T.METRICS, b"other/s9")
    with pytest.raises(ValueError, match="at least two"):
        Composite([RolloutSamples(SamplesSpec())])


def test_only_the_stages_reading_a_topic_see_its_records() -> None:
    proc = Composite(stages())
    point_topic = "pfx." + T.METRICS.name
    assert proc._of(point_topic) == [2] and proc._of(TOPIC) == [0, 1, 2]
