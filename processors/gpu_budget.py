"""GPU budgets per team or model per period: alerts when spend passes the budget, and when
the period's forecast does, each once per (budget, period).

Spend is the allocated cost of each partition window (`steward.gpu.prices`): what the
team holds, used or not, as a cloud bill would charge it. The forecast is linear:
spent / elapsed share of the period. Usage records are keyed by team, so one instance
sees all of a team. A partition's windows arrive in order, so a record whose window does
not start after the partition's last counted one is a duplicate (a retry upstream) and is
counted once; that takes memory per partition, not per record. Running totals are rebuilt
after a restart by replay: the first offset of every open period is held, so the runner
never commits past it (Kafka's retention must cover a period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from steward import topics as T
from steward.gpu.prices import Catalogue, cost_of
from steward.schema import EventType, make_event
from steward.schema.gpu import BudgetAlert, PartitionUsage
from steward.stream import Emit, Source

SOURCE = "/steward/processors/gpu-budget"
LATE = timedelta(days=1)
"""How long after its end a period still takes (late) usage windows."""


class Budget(BaseModel):
    """Dollars a team (or a model) may spend on GPUs per period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str | None = None
    model: str | None = None
    usd: Annotated[float, Field(gt=0)]
    period: Literal["day", "month"] = "month"

    @model_validator(mode="after")
    def _one_scope(self) -> Budget:
        if (self.team is None) == (self.model is None):
            raise ValueError("a budget is for one team or one model")
        return self

    def scope(self) -> tuple[Literal["team", "model"], str]:
        return ("team", self.team) if self.team else ("model", self.model)  # type: ignore[return-value]

    def covers(self, u: PartitionUsage) -> bool:
        return u.team == self.team if self.team else u.model == self.model


def period_of(period: str, ts: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the day or calendar month (UTC) holding `ts`."""
    ts = ts.astimezone(UTC)
    if period == "day":
        start = datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
        return start, start + timedelta(days=1)
    start = datetime(ts.year, ts.month, 1, tzinfo=UTC)
    nxt = datetime(ts.year + ts.month // 12, ts.month % 12 + 1, 1, tzinfo=UTC)
    return start, nxt


@dataclass
class State:
    spent: dict[tuple[int, datetime], float] = field(default_factory=dict)
    last: dict[tuple[int, str], datetime] = field(default_factory=dict)
    """Per (budget, partition): the end of the last window counted."""
    first: dict[tuple[int, datetime], tuple[datetime, int]] = field(default_factory=dict)
    """Per (budget, period): its end, and the offset of its first record (held)."""
    fired: set[tuple[str, int, datetime]] = field(default_factory=set)
    topic: str = ""


class GpuBudget:
    """The processor: usage records in; budget alerts out."""

    name = "gpu-budget"
    inputs = (T.GPU_USAGE,)

    def __init__(self, budgets: list[Budget], catalogue: Catalogue) -> None:
        self.budgets = budgets
        self.catalogue = catalogue

    def initial_state(self) -> State:
        return State()

    def hold(self, state: State) -> dict[str, int]:
        """The first record of every open period stays replayable."""
        offsets = [offset for _, offset in state.first.values()]
        return {state.topic: min(offsets)} if offsets else {}

    def tick(self, state: State, now: datetime) -> tuple[State, list[Emit]]:
        """Periods over for a day (late windows allowed) are dropped and released."""
        for key, (end, _) in list(state.first.items()):
            if now - end > LATE:
                del state.first[key]
                state.spent.pop(key, None)
                state.fired = {f for f in state.fired if f[1:] != key}
        return state, []

    def step(self, state: State, record: Any, now: datetime,
             src: Source) -> tuple[State, list[Emit]]:
        if not isinstance(record, PartitionUsage):
            return state, []
        price = self.catalogue.hourly(record.card, record.site)
        if price is None:
            return state, []
        cost = cost_of(record, price).allocated
        state.topic = src.topic
        emits = []
        for i, budget in enumerate(self.budgets):
            if budget.covers(record):
                emits += self._add(state, i, budget, record, cost, src.offset)
        return state, emits

    def _add(self, state: State, i: int, budget: Budget, u: PartitionUsage,
             cost: float, offset: int) -> list[Emit]:
        start, end = period_of(budget.period, u.window.start)
        last = state.last.get((i, u.partition))
        if last is not None and u.window.start < last:
            return []
        state.last[(i, u.partition)] = u.window.end
        state.first.setdefault((i, start), (end, offset))
        spent = state.spent[(i, start)] = state.spent.get((i, start), 0.0) + cost
        elapsed = (u.window.end - start) / (end - start)
        forecast = spent / elapsed if elapsed > 0 else spent
        kind = "exceeded" if spent > budget.usd else "forecast" if forecast > budget.usd \
            else None
        if kind is None or (kind, i, start) in state.fired:
            return []
        state.fired.add((kind, i, start))
        return [self._alert(kind, budget, u, start, end, spent, forecast)]

    def _alert(self, kind: Literal["exceeded", "forecast"], budget: Budget, u: PartitionUsage,
               start: datetime, end: datetime, spent: float, forecast: float) -> Emit:
        scope, name = budget.scope()
        what = f"spent {spent:.2f} $" if kind == "exceeded" else \
            f"on course for {forecast:.2f} $ (spent {spent:.2f} $)"
        data = BudgetAlert(kind=kind, scope=scope, name=name, period=budget.period,
                           period_start=start, period_end=end, budget_usd=budget.usd,
                           spent_usd=spent, forecast_usd=forecast, window=u.window,
                           reason=f"{scope} {name} {what} of a {budget.usd:.2f} $ "
                                  f"{budget.period} budget on GPUs")
        etype = EventType.BUDGET_EXCEEDED if kind == "exceeded" else EventType.BUDGET_FORECAST
        event = make_event(etype, source=SOURCE, subject=f"{scope}/{name}", data=data,
                           key=name, time=u.window.end,
                           facts=(kind, scope, name, budget.period, start.isoformat()))
        return Emit(T.ALERTS, event)
