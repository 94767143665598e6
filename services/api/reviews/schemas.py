"""Bodies of `/v1/sop-reviews`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.core.validation import StrictBody


class StepFigures(BaseModel):
    step: str
    number: int | None
    activity: str | None
    lane: str | None
    standard: str | None = Field(description="The time standard as the SOP writes it.")
    tasks: int
    completed: int
    on_time: int
    late: int
    without_standard: int
    open: int
    open_overdue: int
    on_time_percent: float | None
    median_standard_percent: float | None


class ReviewFigures(BaseModel):
    """The SOP performance report (`/v1/reports/sop-performance`) of the review's period,
    as it was when the review opened."""

    period_from: date
    period_to: date
    generated_at: datetime
    instances: int
    tasks: int
    completed: int
    on_time: int = Field(description="Completed by the due date.")
    late: int = Field(description="Completed after the due date.")
    without_standard: int
    open: int
    open_overdue: int
    on_time_percent: float | None = Field(description="on_time / (on_time + late) × 100.")
    median_standard_percent: float | None
    late_tasks_total: int = Field(description="Tasks done late or still open past due.")
    steps: list[StepFigures]


class ReviewPublic(BaseModel):
    id: str
    satker: str
    sop: str
    sop_version: int
    due_on: date
    period_from: date = Field(description="First local date the figures cover.")
    period_to: date = Field(description="Last local date the figures cover.")
    opened_at: datetime
    state: Literal["open", "completed"]
    completed_at: datetime | None
    completed_by: str | None
    completed_by_name: str | None
    acting_for: dict[str, Any] | None = Field(
        description="The Plh/Plt assignment the review was completed under."
    )
    decision: Literal["tetap", "revisi"] | None = Field(
        description="`tetap`: keep the SOP as it is; `revisi`: revise it."
    )
    note: str | None
    next_due_on: date | None = Field(
        default=None,
        description="Once completed: when the satker's next review of the SOP falls due.",
    )


class ReviewDetail(ReviewPublic):
    performance: ReviewFigures


class ReviewList(BaseModel):
    items: list[ReviewPublic] = Field(description="Latest due first; 500 at most.")


class ReviewComplete(StrictBody):
    decision: Literal["tetap", "revisi"] = Field(
        description="`tetap`: keep the SOP as it is; `revisi`: revise it (a new version)."
    )
    note: str | None = Field(default=None, max_length=4000)
