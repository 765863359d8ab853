"""Emitted marks: how far a processor's outputs went out, per input partition.

A processor with open windows commits offsets held back to the first record a window
still needs, so a new owner (after a crash or a rebalance) replays from there and
rebuilds the windows. Without more, the replay would also emit again every verdict the
old owner had already reached from those records: the same ids, but the same action on
the actions topic twice. So after each batch's outputs are acknowledged, the runner
records the partition's position as a *mark*, and a new owner runs the records below the
mark for their state only.

Marks are the committed offsets of a second consumer group, `{group}.emitted` (never
joined, only committed to), because the embedded broker drops commit metadata. Losing a
mark (a crash between the acknowledgement and the mark) only means duplicates with the
same ids, which downstream deduplicates: at-least-once either way.
"""

from __future__ import annotations

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from steward.settings import KafkaSettings


class EmittedMarks:
    def __init__(self, kafka: KafkaSettings, group_id: str, client_id: str) -> None:
        self._kafka = kafka
        self.group_id = f"{group_id}.emitted"
        self._client_id = client_id
        self._client: KafkaConsumer | None = None
        self._last: dict[TopicPartition, int] = {}

    def _group(self) -> KafkaConsumer:
        if self._client is None:
            self._client = KafkaConsumer(bootstrap_servers=self._kafka.servers(),
                                         group_id=self.group_id, client_id=self._client_id,
                                         enable_auto_commit=False)
        return self._client

    def read(self, tp: TopicPartition) -> int:
        """The mark an earlier owner left on `tp`, or -1."""
        mark = self._group().committed(tp)
        return -1 if mark is None else mark

    def record(self, positions: dict[TopicPartition, int],
               committed: dict[TopicPartition, int]) -> None:
        """Mark the positions whose commit is held behind them (raises `KafkaError`)."""
        marks = {tp: OffsetAndMetadata(p, "", -1) for tp, p in positions.items()
                 if committed.get(tp, p) < p and self._last.get(tp) != p}
        if marks:
            self._group().commit(marks)
            self._last.update({tp: m.offset for tp, m in marks.items()})

    def close(self) -> None:
        if self._client is not None:
            self._client.close(autocommit=False)
            self._client = None
