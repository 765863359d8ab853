"""A processor killed with SIGKILL in the middle of its stream, then started again.

The canary judge (its own process) has judged some sites' windows and holds others open
when it is killed; its memory goes with it. Restarted, it replays from its committed
offsets, rebuilds the open windows and judges them. Counted from outside: every inference
record stored once, one rollback per site on the actions topic and in the store.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from steward import topics as T
from tests.faults.conftest import Stack, events_on, metric, post, records, regression, stored_ids
from tests.support import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]
ROLLBACK = "steward.model.rolled_back"


def rollbacks(stack: Stack) -> list[str]:
    return [e["id"] for e in events_on(stack.kafka.bootstrap_servers, T.ACTIONS.full())
            if e.get("type") == ROLLBACK]


def test_sigkill_mid_stream_loses_no_window_and_emits_each_rollback_once(stack: Stack):
    stack.api()
    stack.collector()
    canary = stack.canary()
    stack.processor("governance-gate")
    stack.ready()
    url = f"{stack.collector_url}/v1/inferences"
    judged = [f"a{i}" for i in range(6)]   # whole windows: judged before the kill
    open_ = [f"b{i}" for i in range(6)]    # half windows: open when it is killed
    sent: list[str] = []
    for site in judged:
        body = regression(site)
        sent += [r["id"] for r in body]
        assert post(url, body).status_code == 200
    for site in open_:
        body = records(f"{site}-base", 10, site) + records(f"{site}-canary", 4, site, "2", 50.0)
        sent += [r["id"] for r in body]
        assert post(url, body).status_code == 200
    handled = len(sent)
    wait_for(lambda: metric(canary.ready_url, "steward_stream_records_total",
                            stage="canary-latency", outcome="ok") >= handled,
             60, "the canary judge to handle every record sent")
    wait_for(lambda: len(set(rollbacks(stack))) == len(judged), 30, "the first six rollbacks")

    assert canary.kill(signal.SIGKILL) == -signal.SIGKILL
    for site in open_:  # the rest of each open window, and a record that closes it
        body = (records(f"{site}-canary-late", 6, site, "2", 50.0, at=1.0)
                + records(f"{site}-close", 1, site, at=15.0))
        sent += [r["id"] for r in body]
        assert post(url, body).status_code == 200
    canary.start()

    sites = judged + open_
    wait_for(lambda: len(set(rollbacks(stack))) == len(sites), 60, "a rollback per site")
    wait_for(lambda: len(stored_ids(stack.api_url, "/events", type=ROLLBACK)) == len(sites),
             30, "every rollback stored")
    wait_for(lambda: len(stored_ids(stack.api_url)) >= len(sent), 30, "every record stored")

    stored = stored_ids(stack.api_url)
    assert len(stored) == len(set(stored)) == len(sent) and set(stored) == set(sent)
    events = stored_ids(stack.api_url, "/events", type=ROLLBACK)
    assert len(events) == len(set(events)) == len(sites)
    emitted = Counter(rollbacks(stack))
    assert len(emitted) == len(sites)
    assert sorted(emitted.values()) == [1] * len(sites), f"emitted twice: {emitted}"
    # the restarted judge did replay what the open windows held, for their state only
    assert metric(canary.ready_url, "steward_stream_records_total", stage="canary-latency",
                  outcome="replayed") > 0
