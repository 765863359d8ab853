"""The runner's per-message paths: keys a stage does not accept are never decoded, and a
stage's `step_run` gives what `step` gives record by record (falling back to it, with
dead letters, when `step_run` refuses)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from kafka.structs import TopicPartition
from prometheus_client import CollectorRegistry

from processors.canary_latency import CanaryLatency, CanarySpec
from processors.rollout_samples import RolloutSamples, SamplesSpec
from steward import topics as T
from steward.bus.metrics import StreamMetrics
from steward.bus.runner import Runner
from steward.codec import encode_batch
from steward.schema import DeadLetter, InferenceRecord
from steward.settings import KafkaSettings

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
TP = TopicPartition(T.INFERENCE.name, 0)


def rec(i: int, site: str = "s1", model: str = "m", version: str = "1") -> InferenceRecord:
    return InferenceRecord(id=f"r{i}" if site == "s1" else f"{site}-{i}", model=model,
                           version=version, site=site, tier="edge",
                           ts=T0 + timedelta(seconds=i), latency_ms=10.0 + i)


def msg(offset: int, key: str, value: bytes) -> SimpleNamespace:
    return SimpleNamespace(key=key.encode(), value=value, headers=[], offset=offset)


def runner(stage) -> tuple[Runner, CollectorRegistry]:
    registry = CollectorRegistry()
    return Runner(stage, kafka=KafkaSettings(), group_id="g", producer=None,
                  metrics=StreamMetrics(registry)), registry


def test_messages_whose_key_no_canary_watches_are_not_decoded() -> None:
    stage = CanaryLatency([CanarySpec(model="m", baseline_version="1", canary_version="2",
                                      site="s1", window_s=60)])
    run, registry = runner(stage)
    polled = {TP: [msg(0, "other/s1", b"not even JSON"), msg(1, "m/s2", b"\x00"),
                   msg(2, "m/s1", encode_batch([rec(1), rec(2, version="2")]))]}
    outs = run._handle(polled)
    assert outs == []  # the garbage under other keys is not this stage's to dead-letter
    assert registry.get_sample_value("steward_stream_skipped_messages_total",
                                     {"stage": "canary-latency", "topic": TP.topic}) == 2
    assert registry.get_sample_value("steward_stream_records_total", {
        "stage": "canary-latency", "topic": TP.topic, "outcome": "ok"}) == 2
    assert run.positions[TP] == 3  # skipped messages still count as read
    (windows,) = run.states[0].windows.values()
    assert {k: sorted(v) for k, v in windows.open.items()} == {
        (("m", "s1"), T0): ["1", "2"]}
    assert stage.accepts(T.INFERENCE, None) and stage.accepts(T.INFERENCE, b"no-slash")


class _OneByOne(RolloutSamples):
    step_run = None  # the runner then steps record by record


class _Refusing(RolloutSamples):
    def step_run(self, state, records, now, src):
        raise ValueError("refused")

    def step(self, state, record, now, src):
        if record.id == "r3":
            raise ValueError("r3 is bad")
        return super().step(state, record, now, src)


def _feed(stage) -> tuple[list, Runner]:
    run, _ = runner(stage)
    polled = {TP: [msg(0, "m/s1", encode_batch([rec(i) for i in range(0, 8)])),
                   msg(1, "m/s2", encode_batch([rec(i, "s2") for i in range(3, 30)])),
                   msg(2, "m/s1", encode_batch([rec(i) for i in range(30, 45)]))]}
    return run._handle(polled), run


def test_step_run_and_record_by_record_emit_the_same_messages() -> None:
    spec = SamplesSpec(bucket_s=10, grace_s=0)
    whole, _ = _feed(RolloutSamples(spec))
    single, _ = _feed(_OneByOne(spec))
    samples = [json.loads(o.value)["records"][0] for o in whole]
    assert [(s["site"], s["start"][11:19], s["records"]) for s in samples] == [
        ("s2", "12:00:00", 7), ("s2", "12:00:10", 10),  # s2's event time passes 10 s, 20 s
        ("s1", "12:00:00", 8), ("s1", "12:00:30", 10)]  # s1's jumps to 30 s, then 40 s
    assert [(o.topic, o.key, o.value) for o in whole] == \
        [(o.topic, o.key, o.value) for o in single]


def test_a_refused_step_run_falls_back_to_steps_with_dead_letters() -> None:
    outs, _ = _feed(_Refusing(SamplesSpec(bucket_s=10, grace_s=0)))
    letters = [DeadLetter.model_validate_json(o.value) for o in outs
               if o.topic == T.DEADLETTER.name]
    assert [(d.offset, d.record_index, d.reason) for d in letters] == [
        (0, 3, "processing failed: ValueError: r3 is bad")]
    samples = [json.loads(o.value)["records"][0] for o in outs if o.topic != T.DEADLETTER.name]
    assert [(s["site"], s["records"]) for s in samples] == [("s2", 7), ("s2", 10), ("s1", 7),
                                                             ("s1", 10)]
