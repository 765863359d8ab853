"""The one Kafka loop around every processor and sink.

Per polled batch: decode (bad input -> dead-letter record with the reason and
the original bytes) -> run the stage -> produce its outputs and the dead letters
and wait for acks -> commit offsets. Nothing is committed before what it caused
is safely in Kafka or the store, so delivery is at-least-once; deterministic
event ids make the duplicates harmless. State is kept per input partition and
dropped when the partition is revoked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from steward import topics as T
from steward.bus.listener import Listener
from steward.bus.marks import EmittedMarks
from steward.bus.messages import by_message, dead_letter, decode
from steward.bus.metrics import StreamMetrics
from steward.bus.producer import Out, Producer
from steward.bus.tracing import StageTelemetry
from steward.codec import (
    JSON_HEADERS,
    Rejected,
    encode_batch,
)
from steward.errors import StewardError, Unavailable
from steward.schema import to_kafka
from steward.settings import KafkaSettings
from steward.stream import Emit, Processor, Sink, Source
from steward.telemetry import Telemetry

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Raised inside a batch when a stop was asked while a dependency was down."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runner:
    """Runs one processor or sink as a member of consumer group `group_id`."""

    def __init__(
        self, stage: Processor[Any] | Sink, *, kafka: KafkaSettings, group_id: str,
        producer: Producer, metrics: StreamMetrics, clock: Callable[[], datetime] = utcnow,
        poll_timeout_ms: int = 500, max_records: int = 1000, tick_interval_s: float = 1.0,
        telemetry: Telemetry | None = None, fetch_min_bytes: int = 1,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self.stage = stage
        self.name = stage.name
        self.kafka = kafka
        self.group_id = group_id
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        self.poll_timeout_ms = poll_timeout_ms
        self.max_records = max_records
        self.tick_interval_s = tick_interval_s
        self.fetch = {"fetch_min_bytes": fetch_min_bytes, "fetch_max_wait_ms": fetch_max_wait_ms}
        """Kafka fetch sizing: a sink lets the broker gather more per fetch (one store
        transaction per poll), a processor takes what is there (latency)."""
        self.otel = StageTelemetry(telemetry, self.name, group_id, self.is_processor) \
            if telemetry is not None and telemetry.enabled else None
        """Spans, trace context and OTel metrics; None while Steward's own telemetry is off."""
        self.states: dict[int, Any] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        self.replay_below: dict[TopicPartition, int] = {}
        """Per partition, the earlier owner's emitted mark (steward/bus/marks.py): records
        below it are replayed for state only, emitting nothing twice."""
        self._marks = EmittedMarks(kafka, group_id, f"{kafka.client_id}-{self.name}-marks")
        self.assigned: frozenset[TopicPartition] | set[TopicPartition] = frozenset()
        """Partitions this member owns now (replaced, never mutated: safe to read)."""
        self._stop = threading.Event()
        self.ready = threading.Event()
        self.stopped = threading.Event()
        """Set once the loop has left its group and closed the consumer."""

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and close (safe from signal handlers)."""
        self._stop.set()

    @property
    def is_processor(self) -> bool:
        return hasattr(self.stage, "step")

    def _consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.kafka.servers(), group_id=self.group_id,
            client_id=f"{self.kafka.client_id}-{self.name}", enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=self.kafka.max_poll_interval_ms,
            request_timeout_ms=max(self.kafka.request_timeout_ms,
                                   self.kafka.session_timeout_ms + 1000),
            partition_assignment_strategy=[RangePartitionAssignor],
            fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.fetch,
        )
        names = [t.full(self.kafka.topic_prefix) for t in self.stage.inputs]
        consumer.subscribe(names, listener=Listener(self))
        return consumer

    def run(self) -> None:
        """Loop until `stop()`; commits after every batch whose outputs were acknowledged."""
        consumer = self._consumer()
        log.info("%s: consuming %s as group %s", self.name,
                 [t.name for t in self.stage.inputs], self.group_id)
        next_tick = time.monotonic() + self.tick_interval_s
        try:
            while not self._stop.is_set():
                polled = consumer.poll(timeout_ms=self.poll_timeout_ms,
                                       max_records=self.max_records)
                self.ready.set()
                started = time.monotonic()
                for tp in polled.keys() - self.replay_below.keys():
                    self.replay_below[tp] = self._marks.read(tp) if self.is_processor else -1
                try:
                    outs = self._handle(polled)
                except _Stopped:
                    break  # nothing of this batch is committed: it will be redelivered
                if time.monotonic() >= next_tick:
                    outs.extend(self._tick())
                    next_tick = time.monotonic() + self.tick_interval_s
                offsets = self._offsets_to_commit()
                if not outs and not offsets:
                    continue
                if not self._deliver(outs):
                    break  # stopping while Kafka is down: leave offsets uncommitted
                self._commit(consumer, offsets)
                if outs and self.is_processor:
                    self._mark()
                elapsed = time.monotonic() - started
                self.metrics.batch_seconds.labels(self.name).observe(elapsed)
                if self.otel is not None:
                    self.otel.batch_done(elapsed)
        finally:
            consumer.close(autocommit=False)
            self._marks.close()
            self.stopped.set()
            log.info("%s: stopped", self.name)

    def _handle(self, polled: dict[TopicPartition, list[Any]]) -> list[Out]:
        outs: list[Out] = []
        now = self.clock()
        prefix = self.kafka.topic_prefix
        accepts = getattr(self.stage, "accepts", None)
        sink_items: list[tuple[Any, Source]] = []  # one write per poll, every partition's
        for tp, messages in polled.items():
            topic = T.by_name(tp.topic, prefix)
            ok: list[tuple[Any, Source]] = []
            skipped = 0
            for msg in messages:
                if accepts is not None and not accepts(topic, msg.key):
                    skipped += 1  # a key the stage has no use for: not even decoded
                    continue
                decoded = decode(msg, topic)
                src = Source(tp.topic, tp.partition, msg.offset, msg.key)
                for rej in decoded.rejected:
                    outs.append(self._reject(rej, src, now, tp.topic, "rejected"))
                for i, item in enumerate(decoded.items):
                    ok.append((item, Source(tp.topic, tp.partition, msg.offset, msg.key, i)))
            if self.otel is None and not self.is_processor:
                sink_items.extend(ok)
            elif self.otel is None:
                outs.extend(self._run_stage(tp.partition, ok, now))
            else:
                outs.extend(self.otel.process(tp.topic, tp.partition, messages, ok,
                                              partial(self._run_stage, tp.partition, now=now)))
            if skipped:
                self.metrics.skipped.labels(self.name, tp.topic).inc(skipped)
            if messages:
                self.positions[tp] = messages[-1].offset + 1
        if sink_items:
            outs.extend(self._run_sink(sink_items, now))
        return outs

    def _offsets_to_commit(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """Per partition: the next offset to read, or, if lower, the first offset that open
        state still holds. Only what changed since the last commit."""
        holds: dict[int, dict[str, int]] = {}
        hold = getattr(self.stage, "hold", None)
        if hold is not None:
            holds = {p: hold(state) for p, state in self.states.items()}
        out = {}
        for tp, position in self.positions.items():
            target = min(position, holds.get(tp.partition, {}).get(tp.topic, position))
            if self.committed.get(tp) != target:
                out[tp] = OffsetAndMetadata(target, "", -1)
        return out

    def _mark(self) -> None:
        try:
            self._marks.record(self.positions, self.committed)
        except KafkaError as exc:  # a lost mark means duplicates with the same ids, no loss
            self.metrics.errors.labels(self.name, "commit").inc()
            log.warning("%s: emitted marks not recorded: %s", self.name, exc)

    def _reject(self, rej: Rejected, src: Source, now: datetime, topic: str, outcome: str) -> Out:
        self.metrics.records.labels(self.name, topic, outcome).inc()
        self.metrics.deadletters.labels(self.name, rej.error_type).inc()
        log.warning("%s: dead-lettered %s[%d]@%d: %s", self.name, src.topic, src.partition,
                    src.offset, rej.reason[:300])
        return dead_letter(self.name, rej, src, self.kafka.topic_prefix, now)

    def _run_stage(self, partition: int, items: list[tuple[Any, Source]],
                   now: datetime) -> list[Out]:
        if not items:
            return []
        if self.is_processor:
            return self._run_steps(partition, items, now)
        return self._run_sink(items, now)

    def _run_steps(self, partition: int, items: Sequence[tuple[Any, Source]],
                   now: datetime) -> list[Out]:
        proc: Processor[Any] = self.stage  # type: ignore[assignment]
        state = self.states.get(partition)
        if state is None:
            state = proc.initial_state()
        outs: list[Out] = []
        below = self.replay_below.get(TopicPartition(items[0][1].topic, partition), -1)
        counts: Counter[tuple[str, str]] = Counter()  # metrics once per batch, not per record
        step_run = getattr(proc, "step_run", None)
        for group in by_message(items) if step_run is not None else [items]:
            src = group[0][1]
            replay = src.offset < below  # its outputs went out before this owner took over
            if step_run is not None and len(group) > 1:
                try:  # a whole message at once; refuses before changing state, like step
                    state, emits = step_run(state, [r for r, _ in group], now, src)
                except Exception:  # retried record by record below: logged, counted there
                    log.debug("%s: step_run refused %s@%d", self.name, src.topic, src.offset,
                              exc_info=True)
                else:
                    counts[src.topic, "replayed" if replay else "ok"] += len(group)
                    if not replay:
                        outs.extend(self._emit(emits))
                    continue
            for record, src in group:
                state = self._step(proc, state, record, now, src, src.offset < below,
                                   counts, outs)
        self.states[partition] = state
        self._count(counts)
        return outs

    def _step(self, proc: Processor[Any], state: Any, record: Any, now: datetime,
              src: Source, replay: bool, counts: Counter[tuple[str, str]],
              outs: list[Out]) -> Any:
        """One record through the stage; a failure becomes a dead letter (unless replayed)."""
        try:
            state, emits = proc.step(state, record, now, src)
        except Exception as exc:
            if isinstance(exc, StewardError):  # a record the step refused, with a reason
                log.warning("%s: %s@%d rejected: %s", self.name, src.topic, src.offset, exc)
            else:
                log.exception("%s: step failed on %s@%d", self.name, src.topic, src.offset)
            self.metrics.errors.labels(self.name, "step").inc()
            raw = record.model_dump_json(by_alias=True).encode() \
                if hasattr(record, "model_dump_json") else repr(record).encode()
            rej = Rejected(f"processing failed: {type(exc).__name__}: {exc}", "processing",
                           raw, src.index)
            if not replay:
                outs.append(self._reject(rej, src, now, src.topic, "failed"))
            return state
        counts[src.topic, "replayed" if replay else "ok"] += 1
        if not replay:
            outs.extend(self._emit(emits))
        return state

    def _count(self, counts: Counter[tuple[str, str]]) -> None:
        for (topic, outcome), n in counts.items():
            self.metrics.records.labels(self.name, topic, outcome).inc(n)

    def _run_sink(self, items: list[tuple[Any, Source]], now: datetime) -> list[Out]:
        sink: Sink = self.stage  # type: ignore[assignment]
        try:
            if not self._retrying("store", lambda: sink.write(items)):
                raise _Stopped
        except _Stopped:
            raise
        except Exception:
            log.exception("%s: batch write failed; retrying item by item", self.name)
            self.metrics.errors.labels(self.name, "write").inc()
            return self._write_each(sink, items, now)
        self._count(Counter((src.topic, "ok") for _, src in items))
        return []

    def _write_each(self, sink: Sink, items: list[tuple[Any, Source]], now: datetime) -> list[Out]:
        outs = []
        for item in items:
            try:
                sink.write([item])
                self.metrics.records.labels(self.name, item[1].topic, "ok").inc()
            except Exception as exc:  # noqa: BLE001 - logged, counted, dead-lettered
                rej = Rejected(f"store failed: {type(exc).__name__}: {exc}", "store",
                               repr(item[0]).encode(), item[1].index)
                outs.append(self._reject(rej, item[1], now, item[1].topic, "failed"))
        return outs

    def _emit(self, emits: Sequence[Emit]) -> list[Out]:
        outs = []
        for emit in emits:
            name = emit.topic.full(self.kafka.topic_prefix)
            if emit.event is not None:
                key, value, headers = to_kafka(emit.event)
                outs.append(Out(name, key, value, headers))
            elif emit.record is not None and emit.topic.payload == "deadletter":
                outs.append(Out(name, emit.key.encode() if emit.key else None,  # a composite's
                                emit.record.model_dump_json(by_alias=True).encode(),  # stage
                                JSON_HEADERS))
                self.metrics.deadletters.labels(self.name, "processing").inc()
                self.metrics.errors.labels(self.name, "step").inc()
            elif emit.record is not None:
                key = emit.key.encode() if emit.key else None
                outs.append(Out(name, key, encode_batch([emit.record]), JSON_HEADERS))
            self.metrics.emitted.labels(self.name, emit.topic.name).inc()
        return outs

    def _tick(self) -> list[Out]:
        if not self.is_processor:
            return []
        proc: Processor[Any] = self.stage  # type: ignore[assignment]
        outs: list[Out] = []
        now = self.clock()
        for partition, state in list(self.states.items()):
            self.states[partition], emits = proc.tick(state, now)
            ticked = self._emit(emits)
            if ticked and self.otel is not None:
                ticked = self.otel.ticked(partition, ticked)
            outs.extend(ticked)
        return outs

    def _deliver(self, outs: list[Out]) -> bool:
        """Produce until acknowledged; back off while Kafka is down. False if stopped first."""
        return self._retrying("produce", lambda: self.producer.send_all(outs))

    def _retrying(self, kind: str, action: Callable[[], None]) -> bool:
        """Run `action` until it stops raising `Unavailable`; False if asked to stop first."""
        delay = 0.2
        while True:
            try:
                action()
                return True
            except Unavailable as exc:
                self.metrics.errors.labels(self.name, kind).inc()
                log.warning("%s: %s failed (%s); retrying in %.1fs", self.name, kind,
                            exc.reason, delay)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)

    def _commit(self, consumer: KafkaConsumer, offsets: dict) -> None:
        if not offsets:
            return
        try:
            consumer.commit(offsets)
            self.committed.update({tp: meta.offset for tp, meta in offsets.items()})
        except (CommitFailedError, KafkaError) as exc:
            # The group rebalanced under us: these records will be redelivered (at-least-once).
            self.metrics.errors.labels(self.name, "commit").inc()
            log.warning("%s: commit failed, records will be redelivered: %s", self.name, exc)
