"""Trace context in Kafka headers, and the spans and metrics of messages Steward handles.

One trace follows a record: the collector's request span (child of the client's own
`traceparent`, if it sent one) stamps the W3C `traceparent` on every message it
publishes; the runner continues it in a consumer span per message, and stamps that
span's context on everything the step emitted. A window closed by the clock (a tick)
has no single input: its span is a child of the partition's latest traced input and
links the ones before it. A sink writing many messages at once links them all.

CloudEvents leaving Steward also carry the context as their distributed tracing
extension (`ce_traceparent` in Kafka's binary mode) unless they already have one, so
what reads the event (the governance gate, a webhook receiver) finds the trace too.
Nothing here runs unless telemetry is enabled: callers hold `None` otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import replace
from itertools import groupby
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, SpanKind

from steward.bus.producer import Out
from steward.telemetry import Telemetry

Headers = Sequence[tuple[str, bytes]]
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LINKS = 32


class _HeaderGetter(Getter[Headers]):
    """kafka-python headers: a list of (str, bytes) pairs, names possibly repeated."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


class _HeaderSetter(Setter[list[tuple[str, bytes]]]):
    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


GETTER, SETTER = _HeaderGetter(), _HeaderSetter()


def extract(headers: Headers | None) -> Context:
    """The context a message carries (empty when it carries none)."""
    return propagate.extract(list(headers or []), getter=GETTER)


def stamp(outs: Iterable[Out], context: Context | None = None) -> list[Out]:
    """`outs` carrying `context` (default: the current one) in their headers."""
    carrier: list[tuple[str, bytes]] = []
    propagate.inject(carrier, context, setter=SETTER)
    if not carrier:
        return list(outs)
    names = {k for k, _ in carrier}
    parent = dict(carrier).get("traceparent")
    stamped = []
    for o in outs:
        headers = [(k, v) for k, v in o.headers if k not in names] + carrier
        if parent is not None and any(k == "ce_id" for k, _ in o.headers) \
                and not any(k == "ce_traceparent" for k, _ in o.headers):
            headers.append(("ce_traceparent", parent))
        stamped.append(replace(o, headers=headers))
    return stamped


def _event_type(out: Out) -> str:
    return next((v.decode("utf-8", "replace") for k, v in out.headers if k == "ce_type"), "")


class StageTelemetry:
    """What one runner records: a consumer span per message, context stamped on outputs,
    and the `steward.processing.*` metrics."""

    def __init__(self, telemetry: Telemetry, stage: str, group: str, is_processor: bool) -> None:
        self.tracer = telemetry.tracer()
        self.stage, self.group, self.is_processor = stage, group, is_processor
        meter = telemetry.meter()
        self.duration = meter.create_histogram(
            "steward.processing.duration", unit="s",
            description="Time to handle one polled batch: decode, steps, produce, commit.",
            explicit_bucket_boundaries_advisory=list(SECONDS))
        self.records = meter.create_counter(
            "steward.processing.records", unit="{record}",
            description="Records handed to a processor's step or a sink, by stage and topic.")
        self.emitted = meter.create_counter(
            "steward.processing.emitted", unit="{message}",
            description="Messages a stage produced, by topic and CloudEvent type (actions, "
                        "alerts, proposals, decisions, dead letters).")
        self.recent: dict[int, deque[trace.SpanContext]] = {}
        """Per input partition, the span contexts of its latest messages (for ticks)."""

    def process(self, topic: str, partition: int, messages: Sequence[Any],
                items: list[tuple[Any, Any]], run: Callable[[list], list[Out]]) -> list[Out]:
        """Run `items` (decoded from `messages`) through `run` inside consumer spans."""
        if not items:
            return []
        self.records.add(len(items), {"steward.stage": self.stage,
                                      "messaging.destination.name": topic})
        if not self.is_processor:
            return self._batch(topic, partition, messages, items, run)
        by_offset = {m.offset: m for m in messages}
        outs: list[Out] = []
        for offset, group in groupby(items, key=lambda it: it[1].offset):
            msg, batch = by_offset[offset], list(group)
            with self._span(topic, partition, msg, extract(msg.headers)) as span:
                span.set_attribute("steward.records", len(batch))
                self.recent.setdefault(partition, deque(maxlen=MAX_LINKS)).append(
                    span.get_span_context())
                outs.extend(self._count(stamp(run(batch))))
        return outs

    def _span(self, topic: str, partition: int, msg: Any | None, parent: Context | None,
              links: Sequence[Link] = ()) -> Any:
        attrs: dict[str, Any] = {
            "messaging.system": "kafka", "messaging.operation.name": "process",
            "messaging.operation.type": "process", "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.consumer.group.name": self.group, "steward.stage": self.stage}
        if msg is not None:
            attrs["messaging.kafka.offset"] = msg.offset
            if msg.key:
                attrs["messaging.kafka.message.key"] = msg.key.decode("utf-8", "replace")
        return self.tracer.start_as_current_span(
            f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attrs,
            links=links)

    def _batch(self, topic: str, partition: int, messages: Sequence[Any],
               items: list[tuple[Any, Any]], run: Callable[[list], list[Out]]) -> list[Out]:
        """A sink writes many messages at once: one span linking each message's context."""
        links = [Link(sc) for m in messages[:MAX_LINKS]
                 if (sc := trace.get_current_span(extract(m.headers)).get_span_context())
                 .is_valid]
        with self._span(topic, partition, None, Context(), links) as span:
            span.set_attribute("messaging.batch.message_count", len(messages))
            return self._count(stamp(run(items)))

    def ticked(self, partition: int, outs: list[Out]) -> list[Out]:
        """Outputs of a tick (windows closed by the clock): a span under the partition's
        latest traced input, linking the earlier ones, stamped on the outputs."""
        recent = list(self.recent.get(partition, ()))
        parent = trace.set_span_in_context(trace.NonRecordingSpan(recent[-1])) \
            if recent else Context()
        links = [Link(sc) for sc in recent[:-1]]
        with self.tracer.start_as_current_span(
                f"{self.stage} tick", context=parent, links=links,
                attributes={"steward.stage": self.stage,
                            "messaging.destination.partition.id": str(partition)}):
            return self._count(stamp(outs))

    def _count(self, outs: list[Out]) -> list[Out]:
        for o in outs:
            self.emitted.add(1, {"steward.stage": self.stage,
                                 "messaging.destination.name": o.topic,
                                 "cloudevents.event_type": _event_type(o)})
        return outs

    def batch_done(self, seconds: float) -> None:
        self.duration.record(seconds, {"steward.stage": self.stage})


class IngestTelemetry:
    """The collector's part: a producer span around publishing one request's messages,
    each stamped with its context, and the `steward.ingest.records` counter."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.on = telemetry.enabled
        self.tracer = telemetry.tracer()
        self.counter = telemetry.meter().create_counter(
            "steward.ingest.records", unit="{record}",
            description="Items received by the collector, by signal and outcome "
                        "(accepted, rejected, ignored).")

    @contextmanager
    def sending(self, outs: list[Out]) -> Any:
        """Yield `outs` stamped with a `send` span's context, the span open while they go."""
        if not self.on:
            yield outs
            return
        attrs = {"messaging.system": "kafka", "messaging.operation.name": "send",
                 "messaging.operation.type": "send",
                 "messaging.batch.message_count": len(outs)}
        topics = {o.topic for o in outs}
        if len(topics) == 1:
            attrs["messaging.destination.name"] = next(iter(topics))
        with self.tracer.start_as_current_span("send", kind=SpanKind.PRODUCER,
                                               attributes=attrs):
            yield stamp(outs)

    def ingested(self, signal: str, outcome: str, n: int) -> None:
        if self.on and n:
            self.counter.add(n, {"steward.signal": signal, "steward.outcome": outcome})
