"""What a delivery's body is, per subscription format. Rendered once, when the delivery is
queued, and stored: every retry sends (and signs) exactly the same bytes.

`cloudevents`: the CloudEvent in structured JSON mode (`application/cloudevents+json`),
as `GET /events` shows it.

`alertmanager`: the JSON an Alertmanager webhook receiver gets (version "4"), one alert
per event, so existing alert routes (e.g. a receiver that pages) take Steward's events
as they are. Labels identify the alert (`alertname` = event type, `severity`, `source`,
`subject` and the event's model/version/site/team/node where present); annotations
carry the rest (`summary` is the event's reason, `event_id`, and the other scalar
fields of its data). `startsAt` is the event time; `endsAt` is the zero time (firing,
no resolution known); `fingerprint` is the first 16 hex digits of a SHA-256 of the
sorted labels (Alertmanager's own is a 64-bit hash of them too).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from steward.webhooks.model import Format

CONTENT_TYPES: dict[str, str] = {
    "cloudevents": "application/cloudevents+json; charset=utf-8",
    "alertmanager": "application/json",
}
LABEL_FIELDS = ("model", "version", "site", "team", "node", "canary_version",
                "baseline_version", "gpu_uuid", "instance")
ZERO_TIME = "0001-01-01T00:00:00Z"


def render(event: dict[str, Any], fmt: Format, *, receiver: str = "steward",
           external_url: str = "") -> bytes:
    """The body for one event (its CloudEvents JSON form) in `fmt`, as UTF-8 JSON."""
    doc = event if fmt == "cloudevents" else alertmanager(event, receiver, external_url)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _scalar(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def labels_of(event: dict[str, Any]) -> dict[str, str]:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    labels = {"alertname": str(event.get("type", "")),
              "severity": _scalar(data.get("severity")) or "warning",
              "source": str(event.get("source", ""))}
    if event.get("subject"):
        labels["subject"] = str(event["subject"])
    for name in LABEL_FIELDS:
        value = _scalar(data.get(name))
        if value is not None:
            labels[name] = value
    return labels


def annotations_of(event: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    reason = _scalar(data.get("reason"))
    notes = {"summary": reason or f"{event.get('type')} for {event.get('subject') or '-'}",
             "event_id": str(event.get("id", ""))}
    for name, value in data.items():
        text = _scalar(value)
        if text is not None and name not in labels and name not in ("reason", "schema"):
            notes[name] = text
    return notes


def fingerprint(labels: dict[str, str]) -> str:
    text = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alertmanager(event: dict[str, Any], receiver: str, external_url: str) -> dict[str, Any]:
    """The Alertmanager webhook receiver payload (version 4) for one firing event."""
    labels = labels_of(event)
    group = {"alertname": labels["alertname"]}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": annotations_of(event, labels),
        "startsAt": str(event.get("time") or ZERO_TIME),
        "endsAt": ZERO_TIME,
        "generatorURL": external_url,
        "fingerprint": fingerprint(labels),
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="%s"}' % labels["alertname"],  # noqa: UP031 - braces
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": external_url,
        "alerts": [alert],
    }
