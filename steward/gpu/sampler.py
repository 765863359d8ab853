"""`steward gpu-sampler`: read NVML every interval and post the samples to the collector.

Posting (not exposing a scrape endpoint) keeps the node's path the same as an edge
agent's: the collector validates, dead-letters and acknowledges after Kafka.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from steward.gpu.nvml import Identity, read_samples

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerConfig:
    collector_url: str
    who: Identity
    interval_s: float = 15.0
    token: str | None = None


def run(cfg: SamplerConfig, nvml: Any, stop: threading.Event, once: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int:
    """Sample and post until `stop` (or once); returns how many samples were accepted."""
    headers = {"authorization": f"Bearer {cfg.token}"} if cfg.token else {}
    accepted = 0
    with httpx.Client(base_url=cfg.collector_url.rstrip("/"), headers=headers,
                      timeout=10) as client:
        while True:
            samples = read_samples(nvml, cfg.who, clock())
            body = {"records": [s.model_dump(mode="json", by_alias=True) for s in samples]}
            try:
                resp = client.post("/v1/gpu/samples", json=body)
                accepted += resp.json().get("accepted", 0) if resp.status_code == 200 else 0
                if resp.status_code != 200:
                    log.warning("collector answered %s: %s", resp.status_code, resp.text[:300])
            except httpx.HTTPError as exc:
                log.warning("collector unreachable: %s", exc)
            if once or stop.wait(cfg.interval_s):
                return accepted
