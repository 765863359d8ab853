"""A producer that says yes only when Kafka said yes (acks=all), and fails clearly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from steward.errors import Backpressure, PayloadTooLarge, Unavailable
from steward.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Out:
    """One Kafka message to produce: full topic name, key, value, headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Producer:
    """Thread-safe wrapper; `send_all` returns only once every message is acknowledged."""

    def __init__(self, kafka: KafkaSettings, *, retry_after_s: float = 5.0,
                 open_circuit_s: float = 1.0) -> None:
        self._kafka = kafka
        self._retry_after = retry_after_s
        self._open_circuit_s = open_circuit_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._failed_at = -1e9
        self._last_error = ""

    def _get(self) -> KafkaProducer:
        with self._lock:
            return self._get_locked()

    def _get_locked(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self._kafka.servers(),
                    client_id=self._kafka.client_id,
                    acks="all",
                    linger_ms=self._kafka.linger_ms,
                    request_timeout_ms=self._kafka.request_timeout_ms,
                    max_block_ms=int(self._kafka.ack_timeout_s * 1000),
                    max_request_size=self._kafka.max_message_bytes + 65536,
                    compression_type=None if self._kafka.compression == "none"
                    else self._kafka.compression,
                )
            except (KafkaError, OSError) as exc:
                raise Unavailable(
                    f"Kafka unreachable at {self._kafka.bootstrap_servers}: {exc}",
                    retry_after=self._retry_after,
                ) from exc
        return self._producer

    def send_all(self, outs: Sequence[Out], timeout_s: float | None = None) -> None:
        """Produce every message and wait for all acks; raise `Backpressure`/`Unavailable`."""
        if not outs:
            return
        if time.monotonic() - self._failed_at < self._open_circuit_s:
            # Kafka just failed us: answer at once instead of tying up a thread per request.
            raise Unavailable(f"Kafka unavailable (last error: {self._last_error})",
                              retry_after=self._retry_after)
        try:
            self._send(outs, timeout_s)
        except Unavailable as exc:
            self._failed_at, self._last_error = time.monotonic(), exc.reason[:200]
            raise

    def _send(self, outs: Sequence[Out], timeout_s: float | None) -> None:
        producer = self._get()
        deadline = time.monotonic() + (timeout_s or self._kafka.ack_timeout_s)
        try:
            futures = [
                producer.send(o.topic, key=o.key, value=o.value, headers=o.headers or None)
                for o in outs
            ]
            producer.flush(timeout=max(0.0, deadline - time.monotonic()))
            for fut in futures:
                fut.get(timeout=max(0.0, deadline - time.monotonic()))
        except MessageSizeTooLargeError as exc:  # the data, not Kafka: do not retry as is
            raise PayloadTooLarge(f"a message exceeds Kafka's size limit: {exc}") from exc
        except KafkaTimeoutError as exc:
            raise Backpressure(
                f"Kafka did not acknowledge in time: {exc}", retry_after=self._retry_after
            ) from exc
        except KafkaError as exc:
            # An idempotent producer can be left in a fatal state (e.g. UnknownProducerId after
            # a broker lost its state): start over with a fresh one on the next call.
            self._reset()
            raise Unavailable(f"Kafka refused the write: {exc}",
                              retry_after=self._retry_after) from exc

    def _reset(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except KafkaError as exc:  # it is already broken; closing is best effort
                log.debug("closing a failed producer: %s", exc)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout=timeout_s)
            self._producer = None
