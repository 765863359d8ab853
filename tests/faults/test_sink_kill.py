"""The API/sink process (the DuckDB file's one writer) killed with SIGKILL while it writes,
then started again on the same file and port.

Records stream in through the collector and actions arrive on the actions topic the whole
time. The sink commits offsets only after a batch is in DuckDB, and inserts are
idempotent by id, so what it had written but not committed comes again and is stored once.
"""

from __future__ import annotations

import signal
import threading

import pytest

from steward.bus.producer import Producer
from tests.faults.conftest import Stack, action, post, records, stored_ids, try_stored
from tests.support import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]
MAX_BATCHES, PER_BATCH = 400, 200


def test_sigkill_mid_write_stores_every_record_and_action_once(stack: Stack):
    api = stack.api()
    stack.collector()
    stack.ready()
    producer = Producer(stack.kafka)
    sent: list[str] = []
    restarted, done = threading.Event(), threading.Event()

    def stream() -> None:
        """Batches until a few after the restart, so the kill always lands mid-stream."""
        after = 0
        for b in range(MAX_BATCHES):
            body = records(f"w{b}", PER_BATCH, site=f"s{b % 8}")
            assert post(f"{stack.collector_url}/v1/inferences", body).status_code == 200
            sent.extend(r["id"] for r in body)
            producer.send_all([action(b)])
            after += restarted.is_set()
            if after >= 5:
                break
        done.set()

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        wait_for(lambda: len(try_stored(stack.api_url) or []) >= 3 * PER_BATCH, 60,
                 "the sink to be writing")
        assert api.kill(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, likely mid-batch
        api.start()
        restarted.set()
        sender.join(90)
        assert done.is_set() and len(sent) < MAX_BATCHES * PER_BATCH, "the stream did not end"
    finally:
        producer.close()
    batches = len(sent) // PER_BATCH

    wait_for(lambda: len(try_stored(stack.api_url) or []) >= len(sent), 60,
             "every record stored after the restart")
    stored = stored_ids(stack.api_url)
    assert len(stored) == len(set(stored)) == len(sent), "lost or stored twice"
    assert set(stored) == set(sent)
    wait_for(lambda: len(try_stored(stack.api_url, "/events") or []) >= batches, 30,
             "every action stored")
    events = stored_ids(stack.api_url, "/events")
    assert len(events) == len(set(events)) == batches
