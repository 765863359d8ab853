"""Whatever arrives on an input topic becomes records or dead letters with a reason: the
runner's decode step (pure, every topic, Hypothesis-made values) never raises, and on
the real broker a poison message never stops the loop."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from api.sink import InferenceSink
from api.store import Store
from steward import topics as T
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Producer
from steward.bus.runner import Runner, dead_letter, decode
from steward.schema import DeadLetter
from steward.stream import Source
from tests.fuzz.conftest import FUZZ
from tests.fuzz.test_otlp_bodies import RECORD, json_value
from tests.integration.conftest import kafka, read_topic  # noqa: F401  (fixture)
from tests.support import wait_for

INPUTS = [t for t in T.ALL if t.payload in ("batch", "cloudevent")]
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CE = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"t"),
      ("content-type", b"application/json")]


def deep(n: int) -> bytes:
    return b'{"records":' + b"[" * n + b"]" * n + b"}"


record = st.fixed_dictionaries({}, optional={k: st.one_of(json_value, st.just(v))
                                             for k, v in RECORD.items()})
values = st.one_of(
    st.none(), st.binary(max_size=200), st.sampled_from([deep(100), deep(5000), deep(100_000)]),
    st.builds(lambda d: json.dumps(d).encode(), json_value),
    st.builds(lambda rs, schema: json.dumps({"schema": schema, "records": rs}).encode(),
              st.lists(record, max_size=4), json_value),
    st.just(b'{"records": [{"latency_ms": NaN}, {"latency_ms": Infinity}]}'),
)
headers = st.one_of(st.just([]), st.just(CE),
                    st.lists(st.tuples(st.sampled_from([h for h, _ in CE]),
                                       st.binary(max_size=20)), max_size=6))


@FUZZ
@given(topic=st.sampled_from(INPUTS), key=st.one_of(st.none(), st.binary(max_size=30)),
       value=values, hdrs=headers)
def test_decoding_any_message_gives_items_or_dead_letters_with_reasons(topic, key, value, hdrs):
    msg = SimpleNamespace(key=key, value=value, headers=hdrs, offset=7)
    decoded = decode(msg, topic)  # never raises
    src = Source(topic.name, 0, 7, key)
    for rej in decoded.rejected:
        assert rej.reason and rej.error_type
        out = dead_letter("fuzz", rej, src, "", NOW)
        letter = DeadLetter.model_validate_json(out.value)
        assert letter.reason and base64.b64decode(letter.payload_b64) == rej.raw
    assert decoded.items or decoded.rejected or value is not None


def test_deep_json_is_dead_lettered_not_raised():
    """Regression: json.loads raises RecursionError (not ValueError) on deep nesting; it
    escaped decode_batch, killed the runner, and the redelivered message killed it again."""
    for n in (5000, 100_000):
        decoded = decode(SimpleNamespace(key=None, value=deep(n), headers=[], offset=0),
                         T.INFERENCE)
        assert decoded.items == [] and "not JSON" in decoded.rejected[0].reason


def test_poison_messages_on_the_real_broker_are_dead_lettered_and_the_loop_goes_on(
        kafka, tmp_path):  # noqa: F811
    store = Store(tmp_path / "steward.duckdb")
    producer = Producer(kafka)
    runner = Runner(InferenceSink(store), kafka=kafka, group_id=f"{kafka.topic_prefix}fuzz",
                    producer=producer, metrics=StreamMetrics(CollectorRegistry()),
                    poll_timeout_ms=200)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    raw = KafkaProducer(bootstrap_servers=kafka.servers())
    topic = T.INFERENCE.full(kafka.topic_prefix)
    good = [{**RECORD, "id": f"good-{i}", "schema": "steward.inference.v1"} for i in range(3)]
    poison = [deep(100_000), b"\xff\xfe garbage", b'{"records": 7}',
              json.dumps({"records": [{**RECORD, "latency_ms": "NaN?"}]}).encode()]
    try:
        for value in (poison[0], json.dumps({"records": good[:1]}).encode(), *poison[1:],
                      json.dumps({"records": good[1:]}).encode()):
            raw.send(topic, key=b"m/s", value=value)
        raw.flush()
        wait_for(lambda: store.count_inferences() == 3, 30, "the good records stored")
        letters = wait_for(lambda: (lambda ls: ls if len(ls) >= 4 else None)(
            read_topic(kafka.bootstrap_servers, T.DEADLETTER.full(kafka.topic_prefix))),
            30, "a dead letter per poison message")
        reasons = [json.loads(m["value"])["reason"] for m in letters]
        assert len(reasons) == 4 and all(reasons) and thread.is_alive()
        assert any("recursion" in r for r in reasons)
    finally:
        raw.close()
        runner.stop()
        thread.join(timeout=15)
        producer.close()
        store.close()
