"""Output schemas of the built-in chart page's data (GET /ui/series)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SeriesOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="The series' label values, e.g. a topic or 'allowed'")
    values: list[float | None] = Field(
        description="One value per entry of `times`; null where the series had no value")


class ChartOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    unit: str
    kind: Literal["line", "bar"] = Field(
        description="'line': the series over `times`; 'bar': their latest values")
    dashboard: str = Field(description="The Grafana dashboard that charts the same signal")
    metrics: list[str] = Field(description="The Prometheus metric families it is drawn from")
    series: list[SeriesOut]
    hidden: int = Field(0, description="Series left out beyond the per-chart limit")


class ChartsOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    interval_s: float = Field(description="How often the API samples its metrics")
    times: list[float] = Field(description="Sample times, Unix seconds, oldest first")
    charts: list[ChartOut]
    failed_samples: int = Field(0, description="Samples that failed since the API started")
