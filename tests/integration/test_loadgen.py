"""The load generator's parts against the real thing: senders from simulated nodes, the
canaries that regress on cue, the store and actions watchers (a few seconds of load)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from processors.canary_latency import CanaryLatency, CanarySpec
from steward.bus.tail import tail
from steward.loadgen.observe import ActionsWatch, Canaries, StoreWatch, canary_specs
from steward.loadgen.run import _rollbacks
from steward.loadgen.traffic import Senders, fleet
from steward.settings import KafkaSettings

KEYS = [("canary-000", "canary-site-000")]


def test_every_accepted_record_is_stored_once_and_the_regressed_canary_rolls_back_once(
        kafka: KafkaSettings, start_collector: Callable[..., Any],
        start_api: Callable[..., Any], start_runner: Callable[..., Any],
        start_gate: Callable[..., Any], wait: Callable[..., Any]) -> None:
    start_runner(CanaryLatency([CanarySpec(**s) for s in canary_specs(KEYS, 1, 0.25)]))
    start_gate()
    api, store = start_api()
    collector = start_collector()
    canaries = Canaries(collector.url, KEYS, "t-probe", "t")
    actions = ActionsWatch(tail(kafka.bootstrap_servers, "actions", kafka.topic_prefix,
                                from_beginning=True), {m for m, _ in KEYS}).start()
    watch = StoreWatch(api.url, canaries).start()
    try:
        canaries.start()
        senders = Senders(collector.url, fleet(4, 2, 3, "t"), rate=1500, per_request=100,
                          workers=2, otlp_every=3, run="t").start(3.0)
        canaries.inject_at[0] = time.time() + 1.0
        senders.join()
        wait(lambda: actions.rollbacks, timeout_s=60)
        canaries.stop()
        c = senders.counts
        assert c.accepted > 0 and c.otlp_points > 0
        assert c.rejected == 0 and not c.refused and c.errors == 0
        wait(lambda: store.count_inferences() == c.accepted + canaries.sent, timeout_s=60)
        wait(lambda: len(watch.probe_latency) == canaries.sent, timeout_s=30)
    finally:
        watch.stop()
    time.sleep(1.0)  # a second rollback would be a bug
    (measured,) = _rollbacks(actions, canaries, KEYS, 0.25)
    total, window_wait, _rest = measured
    assert len(actions.rollbacks) == 1 and total > 0 and window_wait <= total
    assert all(x > 0 for x in watch.probe_latency)
