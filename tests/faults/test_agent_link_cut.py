"""An edge agent's link cut for a long spell (the collector killed: unreachable), then back.

The edge application keeps posting to its agent, which answers from its durable spool and
keeps retrying upstream (many failed attempts, backoff at its cap). When the collector is
back on the same port, the spool drains oldest first: every record stored once, and the
canary windows the records carry give one rollback per site, emitted once.
"""

from __future__ import annotations

import signal
from collections import Counter

import httpx
import pytest

from steward import topics as T
from tests.faults.conftest import Stack, events_on, metric, records, regression, stored_ids
from tests.support import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]
ROLLBACK = "steward.model.rolled_back"


def test_a_long_outage_at_the_edge_loses_nothing_and_sends_nothing_twice(stack: Stack):
    stack.api()
    collector = stack.collector()
    stack.canary()
    stack.processor("governance-gate")
    agent, agent_url = stack.agent(stack.collector_url)
    stack.ready()
    intake = f"{agent_url}/v1/inferences"
    sent: list[str] = []

    def send(body: list[dict]) -> None:
        assert httpx.post(intake, json=body, timeout=10).status_code == 200
        sent.extend(r["id"] for r in body)

    for b in range(3):
        send(records(f"before-{b}", 100, site="steady"))
    wait_for(lambda: len(stored_ids(stack.api_url)) == len(sent), 60, "the first records")

    assert collector.kill(signal.SIGKILL) == -signal.SIGKILL  # the link is gone
    sites = [f"e{i}" for i in range(4)]
    for i, site in enumerate(sites):
        send(regression(site))
        send(records(f"outage-{i}", 500, site="steady"))
    failed = "steward_agent_forward_attempts_total"
    wait_for(lambda: metric(f"{agent_url}/metrics", failed, outcome="retry") >= 20, 60,
             "twenty failed attempts upstream")
    assert metric(f"{agent_url}/metrics", "steward_agent_link_up") == 0
    waiting = metric(f"{agent_url}/metrics", "steward_agent_spool_records")
    assert waiting == len(sent) - 300, "the spool holds every record sent since the cut"

    collector.start()                                          # the link is back
    wait_for(lambda: metric(f"{agent_url}/metrics", "steward_agent_spool_records") == 0, 60,
             "the spool drained")
    wait_for(lambda: len(stored_ids(stack.api_url)) >= len(sent), 60, "every record stored")
    wait_for(lambda: len({e["id"] for e in events_on(stack.kafka.bootstrap_servers,
                                                     T.ACTIONS.full())}) == len(sites),
             60, "a rollback per site")

    stored = stored_ids(stack.api_url)
    assert len(stored) == len(set(stored)) == len(sent) and set(stored) == set(sent)
    assert metric(f"{agent_url}/metrics", "steward_agent_dropped_records_total") == 0
    emitted = Counter(e["id"] for e in events_on(stack.kafka.bootstrap_servers, T.ACTIONS.full())
                      if e["type"] == ROLLBACK)
    assert len(emitted) == len(sites) and set(emitted.values()) == {1}, emitted
    wait_for(lambda: len(stored_ids(stack.api_url, "/events", type=ROLLBACK)) == len(sites),
             30, "the rollbacks stored")
    assert agent.proc is not None and agent.proc.poll() is None
