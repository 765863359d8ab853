"""Delivery on real parts: the API (auth on) owns the subscriptions, a real HTTP receiver
verifies every signature with standardwebhooks, the outbox is a real SQLite file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from steward.broker import free_port
from steward.webhooks.cli import webhooks_app
from steward.webhooks.model import delivery_id, new_secret
from steward.webhooks.settings import DeliveryOptions
from tests.webhooks.support import FAST, Api, Delivery, Receiver, alert, wait_for


def test_signed_delivery_verified_by_receiver(api: Api, receivers: list[Receiver],
                                              delivery: Callable[..., Delivery]) -> None:
    created = api.create("http://placeholder.invalid/hook")  # secret generated, shown once
    secret = created["secret"]
    assert secret.startswith("whsec_")
    rx = Receiver(secret).start()
    receivers.append(rx)
    am = api.create(rx.url, ["steward.gpu.partition.starved"], format="alertmanager",
                    secret=secret)
    ce = api.create(rx.url, ["steward.gpu.*"], secret=secret)
    api.http.delete(f"/webhooks/{created['id']}")
    listed = api.http.get("/webhooks").json()["subscriptions"]
    assert {s["id"] for s in listed} == {am["id"], ce["id"]}
    assert secret not in api.http.get("/webhooks").text
    assert secret not in api.http.get(f"/webhooks/{ce['id']}").text

    d = delivery().start()
    d.feed(alert("e-1"), alert("e-2", "steward.model.rolled_back"))  # e-2 matches nobody
    wait_for(lambda: len(rx.verified) == 2, what="two verified deliveries")
    assert rx.refused == []
    by_id = dict(rx.verified)
    ce_body = by_id[delivery_id("steward/test", "e-1", ce["id"])]
    assert ce_body["specversion"] == "1.0" and ce_body["id"] == "e-1"
    am_body = by_id[delivery_id("steward/test", "e-1", am["id"])]
    assert am_body["version"] == "4"
    assert am_body["alerts"][0]["labels"]["alertname"] == "steward.gpu.partition.starved"
    last = wait_for(lambda: api.get(ce["id"])["last_delivery"], what="last delivery")
    assert last["outcome"] == "delivered" and last["status_code"] == 200
    assert last["event_id"] == "e-1"
    assert d.sample("steward_webhook_deliveries_total", outcome="delivered") == 2
    assert d.sample("steward_webhook_attempts_total", result="2xx") == 2
    assert d.sample("steward_webhook_queue_depth", state="done") == 2


def test_wrong_secret_is_refused_by_the_verifier(api: Api, receivers: list[Receiver],
                                                 delivery: Callable[..., Delivery]) -> None:
    rx = Receiver(new_secret()).start()  # knows another secret
    receivers.append(rx)
    api.create(rx.url)
    d = delivery().start()
    d.feed(alert("e-1"))
    wait_for(lambda: rx.refused, what="a refused signature")
    assert rx.verified == []


def test_receiver_down_then_up_gets_it_exactly_once(api: Api, receivers: list[Receiver],
                                                    delivery: Callable[..., Delivery]) -> None:
    port = free_port()
    sub = api.create(f"http://127.0.0.1:{port}/hook")
    d = delivery().start()
    d.feed(alert("e-1"))
    wid = delivery_id("steward/test", "e-1", sub["id"])
    wait_for(lambda: (d.outbox.get(wid) or d.outbox.get("-")).attempts >= 3,
             what="three refused connections")
    row = d.outbox.get(wid)
    assert row is not None and row.state == "pending" and "ConnectError" in (row.last_error or "")
    assert d.sample("steward_webhook_attempts_total", result="error") >= 3
    assert d.sample("steward_webhook_oldest_pending_age_seconds") > 0
    rx = Receiver(sub["secret"], port=port).start()
    receivers.append(rx)
    wait_for(lambda: rx.verified, what="delivery after the receiver came back")
    time.sleep(0.5)
    assert rx.ids() == [wid]
    assert d.outbox.get(wid).state == "done"  # type: ignore[union-attr]
    d.feed(alert("e-1"))  # the same event again (Kafka redelivery): nothing new
    time.sleep(0.3)
    assert rx.ids() == [wid]


def test_410_disables_the_subscription_and_stops_attempts(
        api: Api, receivers: list[Receiver], delivery: Callable[..., Delivery]) -> None:
    secret = new_secret()
    rx = Receiver(secret, status=410).start()
    receivers.append(rx)
    sub = api.create(rx.url, secret=secret)
    d = delivery().start()
    d.feed(alert("e-1"), alert("e-2"), alert("e-3"))
    shown = wait_for(lambda: (s := api.get(sub["id"]))["state"] == "disabled" and s,
                     what="the subscription disabled in the API")
    assert "410" in shown["disabled_reason"]
    assert shown["last_delivery"] is None or shown["last_delivery"]["outcome"] == "gone"
    time.sleep(0.5)
    assert len(rx.verified) == 1  # one 410, then nothing more
    assert d.states()["parked"] == 3 and d.states()["pending"] == 0
    d.feed(alert("e-4"))  # disabled: not even queued
    assert d.states()["parked"] == 3 and d.states()["pending"] == 0

    rx.status = 200
    assert api.http.post(f"/webhooks/{sub['id']}/enable").json()["state"] == "active"
    wait_for(lambda: len(rx.verified) == 4, what="parked deliveries after enable")
    assert d.states()["done"] == 3
    assert sorted(set(rx.ids())) == sorted(delivery_id("steward/test", f"e-{i}", sub["id"])
                                           for i in (1, 2, 3))


def test_restart_with_pending_rows_loses_none(api: Api, receivers: list[Receiver],
                                              delivery: Callable[..., Delivery]) -> None:
    secret = new_secret()
    rx = Receiver(secret, status=503).start()
    receivers.append(rx)
    sub = api.create(rx.url, secret=secret)
    first = delivery().start()
    first.feed(*(alert(f"e-{i}") for i in range(5)))
    wait_for(lambda: len(rx.verified) >= 5, what="first attempts")
    first.stop()
    assert first.stopping.is_set()
    rx.status = 200
    second = delivery().start()
    wait_for(lambda: second.states()["done"] == 5, what="all five after the restart")
    wanted = {delivery_id("steward/test", f"e-{i}", sub["id"]) for i in range(5)}
    ok = [i for i, _ in rx.verified[-5:]]
    assert set(ok) == wanted
    assert second.states()["pending"] == 0


def test_exhausted_goes_dead_then_replay_delivers(api: Api, receivers: list[Receiver],
                                                  delivery: Callable[..., Delivery],
                                                  tmp_path: Path) -> None:
    secret = new_secret()
    rx = Receiver(secret, status=500).start()
    receivers.append(rx)
    sub = api.create(rx.url, secret=secret)
    d = delivery(DeliveryOptions(**{**FAST.model_dump(), "max_attempts": 3})).start()
    d.feed(alert("e-1"))
    wait_for(lambda: d.states()["dead"] == 1, what="a dead delivery")
    assert len(rx.verified) == 3
    last = wait_for(lambda: (x := api.get(sub["id"])["last_delivery"]) and
                    x["outcome"] == "dead" and x, what="dead reported")
    assert last["status_code"] == 500 and last["attempts"] == 3

    cli = CliRunner()
    out = cli.invoke(webhooks_app, ["list-dead", "--data-dir", str(tmp_path / "outbox")])
    assert out.exit_code == 0, out.output
    assert '"last_status": 500' in out.output and secret not in out.output
    rx.status = 200
    out = cli.invoke(webhooks_app, ["replay", "--subscription", sub["id"],
                                    "--data-dir", str(tmp_path / "outbox")])
    assert out.exit_code == 0 and '"requeued": 1' in out.output
    wait_for(lambda: d.states()["done"] == 1, what="delivered after replay")
    assert rx.ids()[-1] == delivery_id("steward/test", "e-1", sub["id"])
    assert len(rx.verified) == 4


def test_routes_need_admin(api: Api) -> None:
    bare = httpx.get(f"{api.url}/webhooks")
    assert bare.status_code == 401
    assert httpx.get(f"{api.url}/internal/webhooks").status_code == 401
    bad = api.http.post("/webhooks", json={"url": "ftp://x/y", "event_types": ["*"]})
    assert bad.status_code == 422
    assert api.http.get("/webhooks/wh_nope").status_code == 404
    assert api.http.post("/webhooks/wh_nope/enable").status_code == 404
