"""GPU budgets: an over-budget team gives exactly one forecast and one exceeded alert per
period, with the figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processors.gpu_budget import Budget, GpuBudget, period_of
from processors.gpu_usage import GpuSpec, GpuUsage
from steward import topics as T
from steward.gpu.dcgm import parse_text, to_samples
from steward.gpu.prices import Catalogue
from steward.schema import EventType, event_id
from steward.stream import run_steps
from tests.gpu_support import T0, exposition, h100_rows

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = Catalogue.load(REPO / "config" / "gpu-prices.toml")


def usage_for_minutes(shared_data: Path, minutes: int) -> list:
    """The H100 fixture repeated minute after minute, through the usage processor."""
    rows = [(n, lab, v, ts + timedelta(minutes=m)) for m in range(minutes)
            for n, lab, v, ts in h100_rows()]
    samples = to_samples(parse_text(exposition(rows, shared_data)), T0,
                         {"site": "eu-west-1"}).samples
    _, emits = run_steps(GpuUsage(GpuSpec(window_s=60, grace_s=0)), samples,
                         T0 + timedelta(minutes=minutes, seconds=1))
    return [e.record for e in emits if e.topic is T.GPU_USAGE]


def test_over_budget_team_alerts_once_each(shared_data: Path) -> None:
    usage = usage_for_minutes(shared_data, 3)
    proc = GpuBudget([Budget(team="risk", usd=0.08, period="day")], CATALOGUE)
    _, emits = run_steps(proc, usage + usage, T0)  # redelivered: counted once
    alerts = [e.event for e in emits]
    assert [a.get_type() for a in alerts] == [EventType.BUDGET_FORECAST,
                                              EventType.BUDGET_EXCEEDED]
    minute = 7.0 * 60 / 3600 * (3 / 7)  # fraud-detector's 3g slice of a 7 $/h H100: 0.05 $
    forecast, exceeded = (a.get_data() for a in alerts)
    assert forecast["spent_usd"] == minute
    assert forecast["forecast_usd"] == minute / (601 / 1440)  # 10:01 of a 24 h day: 0.1198 $
    assert exceeded["spent_usd"] == minute + minute  # 0.10 $ > 0.08 $
    assert (exceeded["scope"], exceeded["name"], exceeded["budget_usd"]) == ("team", "risk", 0.08)
    assert exceeded["window"]["start"] == "2025-01-06T10:01:00Z"
    day = datetime(2025, 1, 6, tzinfo=UTC).isoformat()
    assert alerts[1].get_id() == event_id(EventType.BUDGET_EXCEEDED, "exceeded", "team", "risk",
                                          "day", day)


def test_team_under_budget_and_other_teams_are_quiet(shared_data: Path) -> None:
    usage = usage_for_minutes(shared_data, 2)
    budgets = [Budget(team="search", usd=1.0, period="month"),
               Budget(model="chat", usd=100.0)]
    _, emits = run_steps(GpuBudget(budgets, CATALOGUE), usage, T0)
    assert emits == []


def test_a_budget_is_for_one_scope() -> None:
    with pytest.raises(ValueError, match="one team or one model"):
        Budget(team="a", model="b", usd=1)


@pytest.mark.parametrize(("period", "ts", "span"), [
    ("day", datetime(2025, 1, 6, 10, tzinfo=UTC),
     (datetime(2025, 1, 6, tzinfo=UTC), datetime(2025, 1, 7, tzinfo=UTC))),
    ("month", datetime(2025, 12, 31, 23, tzinfo=UTC),
     (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))),
])
def test_periods(period: str, ts: datetime, span: tuple) -> None:
    assert period_of(period, ts) == span


def test_an_open_period_stays_replayable_until_it_is_over(shared_data: Path) -> None:
    usage = usage_for_minutes(shared_data, 3)
    proc = GpuBudget([Budget(team="risk", usd=0.08, period="day")], CATALOGUE)
    state, _ = run_steps(proc, usage, T0)
    assert proc.hold(state) == {"list": 0}  # a restart replays the day from its first record
    # a replay rebuilds the same total and the same alerts (same ids)
    again, emits = run_steps(proc, usage, T0)
    assert again.spent == state.spent and len(emits) == 2
    day_end = datetime(2025, 1, 7, tzinfo=UTC)
    state, _ = proc.tick(state, day_end + timedelta(hours=23))
    assert proc.hold(state) == {"list": 0}  # late windows of the day are still welcome
    state, _ = proc.tick(state, day_end + timedelta(days=1, seconds=1))
    assert proc.hold(state) == {} and state.spent == {}
