"""Rollout usage: GPU partition windows in (keyed by team), per version windows out (keyed
by model).

The rollout judge weighs a canary's measured cost per 1,000 inferences and the health of
its GPU partitions, but usage records are keyed by team (one cost instance sees all of
a team's spend) while a rollout's state lives with its model. Like `rollout-samples`
for inference records, this stage repartitions: every usage window of a partition that
serves a known model version becomes one `VersionUsage` on the rollout usage topic,
keyed by model, which the `rollout` processor reads beside its samples. Stateless: one
record in, at most one out, so nothing is held and a replay emits the same records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from steward import topics as T
from steward.schema.gpu import PartitionUsage
from steward.schema.rollout import VersionUsage
from steward.stream import Emit, Source


def version_usage(u: PartitionUsage) -> VersionUsage | None:
    """The rollout judge's view of one partition window; None when it serves no known
    model version (a card no model label reaches cannot be charged to a version)."""
    if u.model is None or u.version is None:
        return None
    return VersionUsage(model=u.model, version=u.version, site=u.site, partition=u.partition,
                        start=u.window.start, end=u.window.end, allocated_usd=u.allocated_usd,
                        starved="starved" in u.breaches,
                        oversubscribed="oversubscribed" in u.breaches)


class RolloutUsage:
    name = "rollout-usage"
    inputs = (T.GPU_USAGE,)

    def initial_state(self) -> None:
        return None

    def hold(self, state: None) -> dict[str, int]:
        return {}

    def step(self, state: None, record: Any, now: datetime,
             src: Source) -> tuple[None, list[Emit]]:
        made = version_usage(record) if isinstance(record, PartitionUsage) else None
        if made is None:
            return state, []
        return state, [Emit(T.ROLLOUT_USAGE, record=made, key=made.model)]

    def tick(self, state: None, now: datetime) -> tuple[None, list[Emit]]:
        return state, []
