"""The webhook sink: a stage of the shared runner over the actions and alerts topics.

`write` queues one delivery per (event, matching active subscription) in the outbox, in
one SQLite transaction, and returns only once it is committed; the runner commits the
batch's offsets after that. A crash before the commit replays the batch, and the stable
delivery ids make the second enqueue a no-op. If the subscriptions cannot be had, `write`
raises `Unavailable` and the runner retries without committing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from cloudevents.core.v1.event import CloudEvent

from steward import topics as T
from steward.schema import to_json
from steward.stream import Source
from steward.webhooks.metrics import WebhookMetrics
from steward.webhooks.model import LastDelivery, Subscription, delivery_id, matches
from steward.webhooks.outbox import NewDelivery, Outbox
from steward.webhooks.payload import CONTENT_TYPES, render


class Subscriptions(Protocol):
    """Where subscriptions come from (the API; a dict in unit tests)."""

    def current(self) -> dict[str, Subscription]: ...

    def invalidate(self) -> None: ...

    def disable(self, subscription_id: str, reason: str) -> int | None: ...

    def report(self, subscription_id: str, last: LastDelivery) -> bool: ...


def deliveries_for(event: CloudEvent, subs: Sequence[Subscription],
                   external_url: str = "") -> list[NewDelivery]:
    """One delivery per active subscription whose patterns match the event's type."""
    doc: dict | None = None
    out = []
    for sub in subs:
        if sub.state != "active" or not matches(sub.event_types, event.get_type()):
            continue
        doc = doc or to_json(event)
        out.append(NewDelivery(
            id=delivery_id(event.get_source(), event.get_id(), sub.id),
            subscription_id=sub.id, event_id=event.get_id(), event_type=event.get_type(),
            content_type=CONTENT_TYPES[sub.format],
            body=render(doc, sub.format, external_url=external_url)))
    return out


class WebhookSink:
    name = "webhooks"
    inputs = (T.ACTIONS, T.ALERTS)

    def __init__(self, outbox: Outbox, subscriptions: Subscriptions, metrics: WebhookMetrics,
                 *, wake: threading.Event | None = None, external_url: str = "") -> None:
        self.outbox = outbox
        self.subscriptions = subscriptions
        self.metrics = metrics
        self.wake = wake
        self.external_url = external_url

    def write(self, events: Sequence[tuple[CloudEvent, Source]]) -> None:
        subs = list(self.subscriptions.current().values())
        rows = [row for event, _ in events
                for row in deliveries_for(event, subs, self.external_url)]
        added = self.outbox.enqueue(rows)
        self.metrics.enqueued.inc(added)
        if added and self.wake is not None:
            self.wake.set()
