"""The OPA engine failing (500s, then answers slower than the gate's timeout), then well.

The governance gate (its own process) asks a real HTTP server speaking OPA's Data API.
While it fails, promotions fail closed (a `steward.action.denied` naming the engine
failure), rollbacks fail open (the safe move), each as one logged decision; telemetry keeps
flowing to the store. Once OPA answers, promotions are allowed by policy again.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cloudevents.core.v1.event import CloudEvent

from steward import topics as T
from steward.bus.producer import Out, Producer
from steward.schema import to_kafka
from tests.faults.conftest import REPO, Stack, events_on, post, records, stored_ids, try_stored
from tests.governance.opa_server import OpaTestServer
from tests.support import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]
ALLOW = json.loads((REPO / "rules/examples/promotion_allow.json").read_text())["input"]


def proposal(kind: str, i: int) -> Out:
    """A promotion as the shipped promotion_allow example has it, or a rollback."""
    action = ALLOW["action"]
    if kind == "promote":
        data: dict[str, Any] = {**{k: action[k] for k in ("model", "version", "team", "sites",
                                                          "target", "artifact")},
                                "evidence": ALLOW["evidence"]}
        etype = "steward.model.promoted"
    else:
        data = {"model": action["model"], "site": f"site-{i}", "canary_version": "1.5.0",
                "baseline_version": "1.4.0"}
        etype = "steward.model.rolled_back"
    event = CloudEvent({"id": f"{kind}-{i}", "source": "steward/faults", "type": etype,
                        "subject": f"{action['model']}/{i}", "time": datetime.now(UTC),
                        "datacontenttype": "application/json",
                        "partitionkey": action["model"]}, data)
    key, value, headers = to_kafka(event)
    return Out(T.PROPOSALS.full(), key, value, headers)


def outcomes(stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    """(proposal id, type of what went out, its data) per event on the actions topic."""
    out = []
    for e in events_on(stack.kafka.bootstrap_servers, T.ACTIONS.full()):
        denied = e["type"] == "steward.action.denied"
        out.append((e["data"]["proposal_id"] if denied else e["id"], e["type"], e["data"]))
    return out


def test_promotions_fail_closed_rollbacks_open_and_nothing_stalls(stack: Stack):
    opa = OpaTestServer(REPO / "rules").__enter__()
    producer = Producer(stack.kafka)
    try:
        stack.api()
        stack.collector()
        stack.processor("governance-gate", {"STEWARD_GOVERNANCE__OPA_URL": opa.url,
                                            "STEWARD_GOVERNANCE__OPA_TIMEOUT_S": "1"})
        stack.ready()
        producer.send_all([proposal("promote", 0)])
        wait_for(lambda: len(outcomes(stack)) == 1, 60, "the first promotion decided")
        assert outcomes(stack)[0][:2] == ("promote-0", "steward.model.promoted"), outcomes(stack)

        opa.fail_status = 500          # the engine fails ...
        producer.send_all([proposal("promote", 1), proposal("rollback", 1)])
        sent = records("during-500", 300)
        assert post(f"{stack.collector_url}/v1/inferences", sent).status_code == 200
        wait_for(lambda: len(outcomes(stack)) == 3, 30, "decisions while OPA answers 500")
        opa.fail_status, opa.delay_s = None, 3.0   # ... then answers too late
        producer.send_all([proposal("promote", 2), proposal("rollback", 2)])
        more = records("during-timeout", 300)
        assert post(f"{stack.collector_url}/v1/inferences", more).status_code == 200
        sent += more
        wait_for(lambda: len(outcomes(stack)) == 5, 30, "decisions while OPA times out")
        # telemetry did not wait for the gate
        wait_for(lambda: len(try_stored(stack.api_url) or []) >= len(sent), 30, "records stored")

        opa.delay_s = 0.0              # ... and is back
        producer.send_all([proposal("promote", 3)])
        wait_for(lambda: len(outcomes(stack)) == 6, 30, "the promotion after recovery")
    finally:
        producer.close()
        opa.__exit__()

    got = {pid: (etype, data) for pid, etype, data in outcomes(stack)}
    assert Counter(pid for pid, _, _ in outcomes(stack)) == Counter(got.keys())  # each once
    assert len(got) == 6
    assert {p: t for p, (t, _) in got.items()} == {
        "promote-0": "steward.model.promoted", "promote-3": "steward.model.promoted",
        "promote-1": "steward.action.denied", "promote-2": "steward.action.denied",
        "rollback-1": "steward.model.rolled_back", "rollback-2": "steward.model.rolled_back"}
    for pid in ("promote-1", "promote-2"):
        assert got[pid][1]["reasons"][0].startswith("policy engine failed"), got[pid]
    stored = stored_ids(stack.api_url)
    assert len(stored) == len(set(stored)) == len(sent)

    def decisions() -> list[dict[str, Any]]:
        return httpx.get(f"{stack.api_url}/audit/decisions", params={"limit": 100},
                         timeout=10).json()["decisions"]
    wait_for(lambda: len(decisions()) >= 6, 30, "six decisions logged")
    by_proposal = Counter(d["proposal_id"] for d in decisions())
    assert len(by_proposal) == 6 and set(by_proposal.values()) == {1}, by_proposal
    failed = {d["proposal_id"]: d for d in decisions() if d["error"]}
    assert sorted(failed) == ["promote-1", "promote-2", "rollback-1", "rollback-2"]
