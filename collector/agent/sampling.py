"""Sampling of inference records on thin links, without biasing what downstream counts.

A record is kept when a hash of its id falls below the rate, so the decision is the
same on every retry and on every agent that sees the record. A kept record's
`sample_rate` is multiplied by the rate: it now stands for 1 / sample_rate inferences,
and counts weighted that way stay unbiased.
"""

from __future__ import annotations

import hashlib
from typing import Any

_SCALE = float(2**64)


def keeps(record_id: str, rate: float) -> bool:
    """Whether a record with this id is kept at `rate` (0 < rate <= 1)."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(record_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE < rate


def sample(records: list[dict[str, Any]], rate: float) -> tuple[list[dict[str, Any]], int]:
    """(kept records with their sample_rate scaled, how many were left out)."""
    if rate >= 1.0:
        return records, 0
    kept = [{**r, "sample_rate": r.get("sample_rate", 1.0) * rate}
            for r in records if keeps(r["id"], rate)]
    return kept, len(records) - len(kept)
