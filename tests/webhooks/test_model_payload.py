"""Matching, secrets, ids, backoff, and the two body formats checked field by field."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime

import pytest
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from steward.schema import to_json
from steward.webhooks.deliverer import backoff
from steward.webhooks.model import (
    Subscription,
    SubscriptionIn,
    check_secret,
    delivery_id,
    matches,
    new_secret,
)
from steward.webhooks.payload import CONTENT_TYPES, render
from steward.webhooks.sink import deliveries_for

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def starved(event_id: str = "e-1") -> CloudEvent:
    return CloudEvent({"id": event_id, "source": "steward/gpu-usage",
                       "type": "steward.gpu.partition.starved", "subject": "risk/gpu-0",
                       "time": T0, "datacontenttype": "application/json"},
                      {"schema": "steward.gpu.alert.v1", "site": "eu-west-1", "team": "risk",
                       "model": "fraud", "reason": "partition used 4% of its promise",
                       "compute_use": 0.04, "severity": "critical", "cards": [1, 2]})


def sub(sid: str = "wh_1", types: tuple[str, ...] = ("steward.gpu.*",), fmt: str = "cloudevents",
        state: str = "active") -> Subscription:
    return Subscription(id=sid, url="http://127.0.0.1:9/hook", event_types=list(types),
                        format=fmt, description="", state=state, revision=1, created_at=T0,
                        secret=new_secret())


@pytest.mark.parametrize(("patterns", "event_type", "hit"), [
    (["steward.gpu.*"], "steward.gpu.partition.starved", True),
    (["steward.gpu.*"], "steward.gpu", False),
    (["steward.gpu.*"], "steward.gpux.starved", False),
    (["steward.model.rolled_back"], "steward.model.rolled_back", True),
    (["steward.model.rolled_back"], "steward.model.rolled_back.v2", False),
    (["steward.budget.*", "steward.data_quality"], "steward.data_quality", True),
    (["*"], "anything.at.all", True),
])
def test_matching(patterns: list[str], event_type: str, hit: bool) -> None:
    assert matches(patterns, event_type) is hit


@pytest.mark.parametrize("bad", ["steward.*.x", "steward.gpu*", "", "a b", "**"])
def test_bad_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        SubscriptionIn(url="https://example.com/hook", event_types=[bad])


def test_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert check_secret(secret) == secret
    for bad in ("nope", "whsec_***", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            check_secret(bad)
    spec = SubscriptionIn(url="https://example.com/h", event_types=["*"], secret=secret)
    assert secret not in repr(spec) and secret not in str(spec.model_dump())


def test_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        SubscriptionIn(url="file:///etc/passwd", event_types=["*"])


def test_secret_shown_only_in_json() -> None:
    s = sub()
    secret = s.secret.get_secret_value()
    assert secret not in repr(s)
    assert json.loads(s.model_dump_json())["secret"] == secret


def test_delivery_id_is_stable_and_distinct() -> None:
    a = delivery_id("src", "e-1", "wh_1")
    assert a == delivery_id("src", "e-1", "wh_1") and a.startswith("msg_")
    assert len({a, delivery_id("src", "e-1", "wh_2"), delivery_id("src", "e-2", "wh_1"),
                delivery_id("other", "e-1", "wh_1")}) == 4


def test_cloudevents_body_is_structured_json() -> None:
    event = starved()
    body = json.loads(render(to_json(event), "cloudevents"))
    assert body == to_json(event)
    assert body["specversion"] == "1.0" and body["id"] == "e-1"
    assert body["type"] == "steward.gpu.partition.starved" and body["source"] == "steward/gpu-usage"
    assert body["data"]["team"] == "risk"
    assert CONTENT_TYPES["cloudevents"].startswith("application/cloudevents+json")


def test_alertmanager_body_field_by_field() -> None:
    body = json.loads(render(to_json(starved()), "alertmanager", external_url="http://api:8080"))
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "steward"
    assert body["truncatedAlerts"] == 0
    assert body["groupKey"] == '{}:{alertname="steward.gpu.partition.starved"}'
    assert body["groupLabels"] == {"alertname": "steward.gpu.partition.starved"}
    assert body["externalURL"] == "http://api:8080"
    assert len(body["alerts"]) == 1
    alert = body["alerts"][0]
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "steward.gpu.partition.starved",
                               "severity": "critical", "source": "steward/gpu-usage",
                               "subject": "risk/gpu-0", "model": "fraud", "site": "eu-west-1",
                               "team": "risk"}
    assert alert["annotations"] == {"summary": "partition used 4% of its promise",
                                    "event_id": "e-1", "compute_use": "0.04"}
    assert alert["startsAt"] == "2025-03-01T12:00:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == "http://api:8080"
    assert len(alert["fingerprint"]) == 16
    assert body["commonLabels"] == alert["labels"]
    assert body["commonAnnotations"] == alert["annotations"]
    assert all(isinstance(v, str) for v in {**alert["labels"], **alert["annotations"]}.values())


def test_alertmanager_defaults_for_sparse_event() -> None:
    event = CloudEvent({"id": "x", "source": "s", "type": "steward.alert"}, None)
    alert = json.loads(render(to_json(event), "alertmanager"))["alerts"][0]
    assert alert["labels"] == {"alertname": "steward.alert", "severity": "warning", "source": "s"}
    assert alert["annotations"]["summary"] == "steward.alert for -"


def test_deliveries_for_matching_active_subscriptions_only() -> None:
    subs = [sub("wh_a"), sub("wh_b", ("steward.model.*",)), sub("wh_c", state="disabled"),
            sub("wh_d", ("*",), fmt="alertmanager")]
    rows = deliveries_for(starved(), subs)
    assert [r.subscription_id for r in rows] == ["wh_a", "wh_d"]
    assert rows[0].id == delivery_id("steward/gpu-usage", "e-1", "wh_a")
    assert rows[1].content_type == "application/json"
    assert json.loads(rows[1].body)["version"] == "4"


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(7)
    for failures, full in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)):
        waits = [backoff(failures, 1.0, 30.0, rng) for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) > 1
