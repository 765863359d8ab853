"""The webhook receiver down for a while (its port closed), the delivery service killed
with SIGKILL meanwhile, then both back.

Actions reach the actions topic the whole time. The delivery service queues each in its
SQLite outbox before committing, retries while the receiver is away, survives its own
kill -9 with the queue intact, and once the receiver answers again delivers each action
exactly once (one `webhook-id` each, every signature checked by standardwebhooks).
"""

from __future__ import annotations

import signal
from collections import Counter

import httpx
import pytest

from steward.broker import free_port
from steward.bus.producer import Producer
from steward.webhooks.model import new_secret
from tests.faults.conftest import Stack, action, metric, stored_ids, try_stored
from tests.support import wait_for
from tests.webhooks.support import Receiver

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]
N = 30


def test_receiver_away_then_back_gets_every_action_once(stack: Stack):
    stack.api()
    stack.ready()
    port = free_port()
    secret = new_secret()
    receiver = Receiver(secret, port=port)
    created = httpx.post(f"{stack.api_url}/webhooks", json={
        "url": f"http://127.0.0.1:{port}/hook", "event_types": ["steward.model.*"],
        "secret": secret}, timeout=10)
    assert created.status_code == 201, created.text
    metrics = free_port()
    fast = {"STEWARD_METRICS_PORT": str(metrics), "STEWARD_WEBHOOKS__BACKOFF_BASE_S": "0.1",
            "STEWARD_WEBHOOKS__BACKOFF_MAX_S": "0.5", "STEWARD_WEBHOOKS__POLL_S": "0.1",
            "STEWARD_WEBHOOKS__CACHE_TTL_S": "0.2", "STEWARD_WEBHOOKS__TIMEOUT_S": "2",
            "STEWARD_WEBHOOKS__MAX_ATTEMPTS": "1000"}
    hooks = stack.child("webhooks", ["webhooks", "run", "--data-dir",
                                     str(stack.tmp / "hooks")],
                        f"http://127.0.0.1:{metrics}/metrics", fast, wait=True)
    url = hooks.ready_url
    producer = Producer(stack.kafka)
    try:
        producer.send_all([action(i) for i in range(N // 2)])
        wait_for(lambda: metric(url, "steward_webhook_attempts_total", result="error") >= N // 2,
                 60, "failed attempts while the receiver is away")
        assert hooks.kill(signal.SIGKILL) == -signal.SIGKILL
        producer.send_all([action(i) for i in range(N // 2, N)])  # while nobody delivers
        hooks.start()
        wait_for(lambda: metric(url, "steward_webhook_queue_depth") >= N, 60,
                 "every action queued again after the kill")
        receiver.start()
        wait_for(lambda: len(set(receiver.ids())) >= N, 60, "every action delivered")
        wait_for(lambda: metric(url, "steward_webhook_queue_depth", state="done") == N, 30,
                 "every delivery done")
        assert metric(url, "steward_webhook_queue_depth") == N  # none pending, parked, dead
    finally:
        producer.close()
        receiver.stop()

    delivered = Counter(receiver.ids())
    assert len(delivered) == N and set(delivered.values()) == {1}, f"twice: {delivered}"
    assert sorted(b["id"] for _, b in receiver.verified) == sorted(
        f"a-rollback-{i}" for i in range(N))
    assert not receiver.refused
    wait_for(lambda: len(try_stored(stack.api_url, "/events") or []) >= N, 30, "stored")
    events = stored_ids(stack.api_url, "/events")
    assert len(events) == len(set(events)) == N
