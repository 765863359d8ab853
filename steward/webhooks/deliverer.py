"""Delivers queued webhooks: signed, retried with backoff and jitter, dead-lettered.

Each attempt POSTs the stored body with the Standard Webhooks headers: `webhook-id` (the
row id, stable across retries: receivers dedup by it), `webhook-timestamp` (now, so a
late retry is not refused as a replay) and `webhook-signature` (the `standardwebhooks`
package's `v1,` HMAC-SHA256 of `id.timestamp.body`). Outcomes:

- 2xx: done;
- 410: the endpoint is gone. The subscription's rows are parked at once (no further
  attempts), it is disabled in the API with the reason, and its rows are released when
  the API shows it enabled again (a higher revision);
- anything else (other 4xx, 5xx, timeout, refused connection): retried after
  `backoff()`, or a receiver's Retry-After if longer, until `max_attempts` or `max_age_s`,
  then the row is dead (`steward webhooks replay` queues it again).

One subscription's due rows are sent one after another (a struggling endpoint is not
hammered, and a 410 stops the rest); different subscriptions go in parallel. A crash
after a receiver's 2xx but before the row is marked done repeats that delivery with the
same `webhook-id`: delivery is at-least-once, and receivers dedup.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from steward import __version__
from steward.errors import Unavailable
from steward.webhooks.metrics import WebhookMetrics
from steward.webhooks.model import LastDelivery, Outcome, Subscription
from steward.webhooks.outbox import Delivery, Outbox
from steward.webhooks.settings import DeliveryOptions
from steward.webhooks.sink import Subscriptions

log = logging.getLogger(__name__)


def backoff(failures: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Wait after the `failures`-th failed attempt: base * 2^(failures-1), capped, with
    equal jitter (half fixed, half random) so many failing deliveries spread out while
    each still waits about as long as the schedule says."""
    delay = min(cap_s, base_s * 2 ** max(0, failures - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


def _retry_after(value: str | None, cap_s: float) -> float:
    try:
        return min(cap_s, max(0.0, float(value))) if value else 0.0
    except ValueError:
        return 0.0  # an HTTP date: rare from webhook receivers, and backoff still applies


class Deliverer:
    def __init__(self, outbox: Outbox, subscriptions: Subscriptions, options: DeliveryOptions,
                 metrics: WebhookMetrics, *, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None,
                 transport: httpx.BaseTransport | None = None,
                 wake: threading.Event | None = None) -> None:
        self.outbox = outbox
        self.subs = subscriptions
        self.opts = options
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self.wake = wake or threading.Event()
        self._http = httpx.Client(timeout=options.timeout_s, follow_redirects=False,
                                  transport=transport,
                                  headers={"user-agent": f"steward-webhooks/{__version__}"})
        self._pool = ThreadPoolExecutor(options.workers, thread_name_prefix="webhook")
        self._reports: dict[str, LastDelivery] = {}
        self._lock = threading.Lock()
        self._pruned_at = float("-inf")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop`; sleeps until the next row is due, a new enqueue or poll_s."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:  # the loop must outlive one bad cycle
                log.exception("webhook delivery cycle failed")
                handled = 0
            if handled >= self.opts.batch:
                continue
            nxt = self.outbox.next_due_at()
            delay = self.opts.poll_s if nxt is None else nxt - self.clock()
            if delay > 0:
                self.wake.wait(min(delay, self.opts.poll_s))
                self.wake.clear()

    def run_once(self) -> int:
        """One cycle: settle 410s with the API, send what is due, report results."""
        try:
            subs = self.subs.current()
        except Unavailable as exc:
            log.warning("no subscriptions, nothing sent this cycle: %s", exc.reason)
            return 0
        self._settle(subs)
        gone = set(self.outbox.gone())
        by_sub: dict[str, list[Delivery]] = {}
        for row in self.outbox.due(self.opts.batch):
            by_sub.setdefault(row.subscription_id, []).append(row)
        futures = [self._pool.submit(self._send_all, rows, subs.get(sid), sid in gone)
                   for sid, rows in by_sub.items()]
        for f in futures:
            f.result()
        self._flush_reports()
        self._prune()
        return sum(len(rows) for rows in by_sub.values())

    def _send_all(self, rows: list[Delivery], sub: Subscription | None, gone: bool) -> None:
        for row in rows:
            if sub is None:
                self.outbox.finish(row.id, "dead", None, "subscription deleted")
                self.metrics.deliveries.labels("dead").inc()
            elif gone or sub.state != "active":
                n = self.outbox.park(sub.id)
                self.metrics.deliveries.labels("parked").inc(n)
                return
            elif not self._send(row, sub):
                return  # 410: the rest are parked

    def _send(self, row: Delivery, sub: Subscription) -> bool:
        """One attempt; False when the endpoint is gone."""
        now = self.clock()
        body = row.body.decode()
        signature = Webhook(sub.secret.get_secret_value()).sign(
            row.id, datetime.fromtimestamp(now, UTC), body)
        headers = {"content-type": row.content_type, "webhook-id": row.id,
                   "webhook-timestamp": str(int(now)), "webhook-signature": signature}
        status, error, retry_after = None, None, 0.0
        started = time.monotonic()
        try:
            with self._http.stream("POST", sub.url, content=row.body, headers=headers) as resp:
                status = resp.status_code
                retry_after = _retry_after(resp.headers.get("retry-after"),
                                           self.opts.max_retry_after_s)
        except httpx.TimeoutException as exc:
            error, result = f"timeout: {type(exc).__name__}", "timeout"
        except httpx.HTTPError as exc:
            error, result = f"{type(exc).__name__}: {exc}"[:500], "error"
        self.metrics.seconds.observe(time.monotonic() - started)
        if status is not None:
            result = "410" if status == 410 else f"{status // 100}xx"
            error = None if 200 <= status < 300 else f"HTTP {status}"
        self.metrics.attempts.labels(result).inc()
        attempts = row.attempts + 1
        if status is not None and 200 <= status < 300:
            self.outbox.finish(row.id, "done", status, None)
            self._note(row, sub, "delivered", status, None, attempts)
            self.metrics.deliveries.labels("delivered").inc()
            return True
        if status == 410:
            self.outbox.retry(row.id, now, status, error)
            parked = self.outbox.mark_gone(sub.id, f"endpoint answered 410 Gone at {sub.url}")
            log.warning("webhook %s answered 410: disabling it, %d deliveries parked",
                        sub.id, parked)
            self._note(row, sub, "gone", status, error, attempts)
            self.metrics.deliveries.labels("gone").inc()
            self.subs.invalidate()
            return False
        if attempts >= self.opts.max_attempts or now - row.created_at >= self.opts.max_age_s:
            self.outbox.finish(row.id, "dead", status, error)
            log.warning("webhook delivery %s to %s dead after %d attempts: %s", row.id,
                        sub.id, attempts, error)
            self._note(row, sub, "dead", status, error, attempts)
            self.metrics.deliveries.labels("dead").inc()
            return True
        wait = max(backoff(attempts, self.opts.backoff_base_s, self.opts.backoff_max_s,
                           self.rng), retry_after)
        self.outbox.retry(row.id, now + wait, status, error)
        self._note(row, sub, "retrying", status, error, attempts)
        self.metrics.deliveries.labels("retried").inc()
        return True

    def _note(self, row: Delivery, sub: Subscription, outcome: Outcome, status: int | None,
              error: str | None, attempts: int) -> None:
        last = LastDelivery(webhook_id=row.id, event_id=row.event_id, event_type=row.event_type,
                            outcome=outcome, status_code=status, error=error, attempts=attempts,
                            at=datetime.fromtimestamp(self.clock(), UTC))
        with self._lock:
            self._reports[sub.id] = last

    def _flush_reports(self) -> None:
        with self._lock:
            reports, self._reports = self._reports, {}
        for sid, last in reports.items():
            self.subs.report(sid, last)

    def _settle(self, subs: dict[str, Subscription]) -> None:
        """Tell the API about 410s it has not heard of; release rows parked for a
        subscription that is active again (re-enabled after a 410, or by hand)."""
        gone = self.outbox.gone()
        for sid, g in gone.items():
            if g.reported_revision is None:
                try:
                    revision = self.subs.disable(sid, g.reason)
                except Unavailable as exc:
                    log.warning("webhook %s not disabled in the API yet: %s", sid, exc.reason)
                    continue
                if revision is None:  # deleted meanwhile: its rows die as orphans
                    self.outbox.release(sid)
                else:
                    self.outbox.reported(sid, revision)
                continue
            sub = subs.get(sid)
            if sub is None or (sub.state == "active" and sub.revision > g.reported_revision):
                n = self.outbox.release(sid)
                log.info("webhook %s is active again: %d parked deliveries due", sid, n)
        for sid in self.outbox.parked_subscriptions():
            sub = subs.get(sid)
            if sid not in gone and (sub is None or sub.state == "active"):
                self.outbox.release(sid)

    def _prune(self) -> None:
        now = self.clock()
        if now - self._pruned_at > 3600:
            self._pruned_at = now
            self.outbox.prune(now - self.opts.retention_s)
