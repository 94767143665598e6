"""`/v1/sop-reviews`: the yearly review of each SOP a satker runs, opened by the worker
when due, read by the heads and admins of the satker and the courts above it, and
completed by its Kasubbag."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Path, Query

from services.api.deps import Context, CurrentActor, Session, Work
from services.api.problems import problem_responses
from services.api.reviews.schemas import (
    ReviewComplete,
    ReviewDetail,
    ReviewFigures,
    ReviewList,
    ReviewPublic,
)
from services.core.db import utcnow
from services.core.reports import service as reports
from services.core.reviews import service as reviews
from services.core.satkers.service import SatkerNotFound

if TYPE_CHECKING:
    from services.core.reviews.models import SopReviewRecord

router = APIRouter(prefix="/v1/sop-reviews", tags=["reviews"])

ReviewId = Annotated[str, Path(max_length=64)]


def _public(review: SopReviewRecord, next_due_on: date | None = None) -> ReviewPublic:
    return ReviewPublic(
        id=review.id,
        satker=review.satker_id,
        sop=review.sop_code,
        sop_version=review.sop_version,
        due_on=review.due_on,
        period_from=review.period_from,
        period_to=review.period_to,
        opened_at=review.opened_at,
        state=review.state,
        completed_at=review.completed_at,
        completed_by=review.completed_by,
        completed_by_name=review.completed_by_name,
        acting_for=review.acting_for,
        decision=review.decision,
        note=review.note,
        next_due_on=next_due_on,
    )


@router.get(
    "",
    response_model=ReviewList,
    summary="A satker's SOP reviews (default: yours), latest due first",
    name="list_sop_reviews",
    responses=problem_responses(403, 404, 422),
)
async def list_sop_reviews(
    actor: CurrentActor,
    context: Context,
    session: Session,
    satker: Annotated[str | None, Query(max_length=64, description="Default: yours.")] = None,
    state: Literal["open", "completed"] | None = None,
    sop: Annotated[str | None, Query(max_length=64, description="SOP code or number.")] = None,
) -> ReviewList:
    target = await reports.satker_for_report(session, context.services, actor, satker)
    code = reports.sop_of(context.catalog, sop).code if sop is not None else None
    found = await reviews.listing(session, target.id, state=state, sop=code)
    return ReviewList(items=[_public(review) for review in found])


async def _readable(
    context: Context, session: Session, actor: CurrentActor, review_id: str
) -> SopReviewRecord:
    review = await reviews.find(session, review_id)
    try:
        await reports.satker_for_report(session, context.services, actor, review.satker_id)
    except SatkerNotFound:
        # Another court's review is reported exactly like a missing one.
        raise reviews.ReviewNotFound(f"No SOP review {review_id!r}") from None
    return review


@router.get(
    "/{review_id}",
    response_model=ReviewDetail,
    summary="One SOP review with the SOP's figures for its period",
    name="get_sop_review",
    responses=problem_responses(403, 404, 422),
)
async def get_sop_review(
    review_id: ReviewId, actor: CurrentActor, context: Context, session: Session
) -> ReviewDetail:
    review = await _readable(context, session, actor, review_id)
    next_due_on = None
    if review.state == "completed":
        next_due_on = await reviews.next_due_on(
            session, context.services, review.satker_id, review.sop_code, utcnow()
        )
    return ReviewDetail(
        **_public(review, next_due_on).model_dump(),
        performance=ReviewFigures.model_validate(review.performance),
    )


@router.post(
    "/{review_id}/complete",
    response_model=ReviewPublic,
    summary="Decide a SOP review: keep the SOP (tetap) or revise it (revisi)",
    name="complete_sop_review",
    responses=problem_responses(403, 404, 409, 422),
)
async def complete_sop_review(
    review_id: ReviewId, body: ReviewComplete, actor: CurrentActor, context: Context, work: Work
) -> ReviewPublic:
    now = utcnow()
    review = await reviews.complete(
        work.session,
        context.services,
        actor,
        review_id,
        decision=body.decision,
        note=body.note,
        now=now,
    )
    next_due_on = await reviews.next_due_on(
        work.session, context.services, review.satker_id, review.sop_code, now
    )
    return _public(review, next_due_on)
