"""Partitions coming and going: what the runner drops when the group takes one away."""

from __future__ import annotations

import logging
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.structs import TopicPartition

log = logging.getLogger(__name__)


def _brief(tps: list[TopicPartition]) -> str:
    """`topic[0,1,5] other[2]`: partitions per topic, for logs people read."""
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}{sorted(ps)}" for t, ps in sorted(by_topic.items()))


class Listener(ConsumerRebalanceListener):
    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self._runner.states.pop(tp.partition, None)
            self._runner.positions.pop(tp, None)
            self._runner.committed.pop(tp, None)
            self._runner.replay_below.pop(tp, None)
        self._runner.assigned = self._runner.assigned - set(revoked)
        if revoked:
            log.info("%s: partitions revoked: %s", self._runner.name, _brief(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._runner.assigned = self._runner.assigned | set(assigned)
        if assigned:
            log.info("%s: partitions assigned: %s", self._runner.name, _brief(assigned))
