"""Logging for every deployable: one line per event, tagged with the service name."""

from __future__ import annotations

import logging
import os


def setup(service: str, level: str | None = None) -> None:
    """Configure the root logger once, in `main`, never at import time."""
    logging.basicConfig(
        level=(level or os.environ.get("STEWARD_LOG_LEVEL", "INFO")).upper(),
        format=f"%(asctime)s %(levelname)-5s [{service}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("kafka", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
