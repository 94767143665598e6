"""Response shapes of the catalog routes."""

from __future__ import annotations

from pydantic import BaseModel

from services.core.engine.definition import TimeStandard


class SopSummary(BaseModel):
    code: str
    number: int
    title: str
    version: int
    versions: list[int]
    lanes: list[str]
    step_count: int
    entry_points: list[str]
    time_standard: TimeStandard | None = None


class SopList(BaseModel):
    items: list[SopSummary]
