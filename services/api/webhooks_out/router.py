"""Webhook subscriptions of the caller's satker, their delivery log, the event types.

Reading needs any role in the satker; changing needs `admin`. Another satker's
subscription or delivery answers 404, like a missing one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Query, Response, status

from services.api.deps import Admin, Context, CurrentActor, Session, Work
from services.api.problems import problem_responses
from services.api.webhooks_out.schemas import (
    AttemptPublic,
    DeliveryList,
    DeliveryPublic,
    DeliveryStatus,
    EventTypeList,
    EventTypePublic,
    SecretRotate,
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
    SubscriptionPublic,
    SubscriptionUpdate,
)
from services.core.db import utcnow
from services.core.validation import DbBigInt
from services.core.webhooks_out import repository, service
from services.core.webhooks_out.event_types import EVENT_TYPES

if TYPE_CHECKING:
    from services.core.webhooks_out.models import WebhookAttemptRecord, WebhookDeliveryRecord

log = structlog.get_logger(__name__)
router = APIRouter(tags=["webhooks"])

SUBSCRIPTIONS = "/v1/webhook-subscriptions"


@router.get(
    "/v1/webhook-event-types",
    response_model=EventTypeList,
    summary="Every event type a subscription can receive, with its payload schema",
    name="list_webhook_event_types",
)
async def list_event_types(actor: CurrentActor) -> EventTypeList:
    return EventTypeList(
        items=[
            EventTypePublic(
                type=event.type,
                description=event.description,
                schema=event.schema,
                example=event.example,
            )
            for event in EVENT_TYPES
        ]
    )


@router.post(
    SUBSCRIPTIONS,
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionCreated,
    summary="Subscribe a URL to events (admin); the secret is shown only here",
    name="create_webhook_subscription",
)
async def create_subscription(
    body: SubscriptionCreate, actor: Admin, context: Context, work: Work
) -> SubscriptionCreated:
    created = await service.create_subscription(
        work.session,
        satker_id=actor.satker,
        url=str(body.url),
        event_types=body.event_types,
        active=body.active,
        description=body.description,
        created_by=actor.sub,
        allow_private=context.settings.webhooks.allow_private_targets,
        now=utcnow(),
    )
    public = SubscriptionPublic.model_validate(created.subscription)
    return SubscriptionCreated(**public.model_dump(), secret=created.secret)


@router.get(
    SUBSCRIPTIONS,
    response_model=SubscriptionList,
    summary="Your satker's subscriptions",
    name="list_webhook_subscriptions",
)
async def list_subscriptions(actor: CurrentActor, session: Session) -> SubscriptionList:
    records = await repository.list_subscriptions(session, actor.satker)
    return SubscriptionList(items=[SubscriptionPublic.model_validate(r) for r in records])


@router.get(
    SUBSCRIPTIONS + "/{subscription_id}",
    response_model=SubscriptionPublic,
    summary="One subscription (never its secret)",
    name="get_webhook_subscription",
    responses=problem_responses(404),
)
async def get_subscription(
    subscription_id: str, actor: CurrentActor, session: Session
) -> SubscriptionPublic:
    record = await service.find_subscription(session, actor.satker, subscription_id)
    return SubscriptionPublic.model_validate(record)


@router.patch(
    SUBSCRIPTIONS + "/{subscription_id}",
    response_model=SubscriptionPublic,
    summary="Change a subscription (admin); `active: true` re-enables a disabled one",
    name="update_webhook_subscription",
    responses=problem_responses(404),
)
async def update_subscription(
    subscription_id: str, body: SubscriptionUpdate, actor: Admin, context: Context, work: Work
) -> SubscriptionPublic:
    record = await service.find_subscription(work.session, actor.satker, subscription_id)
    changes = body.model_dump(exclude_unset=True)
    if body.url is not None:
        changes["url"] = str(body.url)
    changes = {name: value for name, value in changes.items() if value is not None}
    await service.update_subscription(
        work.session,
        record,
        changes,
        allow_private=context.settings.webhooks.allow_private_targets,
        now=utcnow(),
    )
    return SubscriptionPublic.model_validate(record)


@router.delete(
    SUBSCRIPTIONS + "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a subscription with its delivery log (admin)",
    name="delete_webhook_subscription",
    responses=problem_responses(404),
)
async def delete_subscription(subscription_id: str, actor: Admin, work: Work) -> Response:
    record = await service.find_subscription(work.session, actor.satker, subscription_id)
    await service.delete_subscription(work.session, record)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    SUBSCRIPTIONS + "/{subscription_id}/rotate-secret",
    response_model=SecretRotated,
    summary="A new signing secret (admin); the old one also signs during the overlap",
    name="rotate_webhook_secret",
    responses=problem_responses(404),
)
async def rotate_secret(
    subscription_id: str,
    actor: Admin,
    context: Context,
    work: Work,
    body: SecretRotate | None = None,
) -> SecretRotated:
    record = await service.find_subscription(work.session, actor.satker, subscription_id)
    seconds = body.overlap_seconds if body and body.overlap_seconds is not None else None
    if seconds is None:
        seconds = context.settings.webhooks.secret_overlap_seconds
    secret = await service.rotate_secret(
        work.session, record, overlap=timedelta(seconds=seconds), now=utcnow()
    )
    return SecretRotated(
        secret=secret, previous_secret_expires_at=record.previous_secret_expires_at
    )


def _public(
    delivery: WebhookDeliveryRecord, attempts: list[WebhookAttemptRecord]
) -> DeliveryPublic:
    return DeliveryPublic(
        id=delivery.id or 0,
        subscription_id=delivery.subscription_id,
        event_type=delivery.event_type,
        event_id=str(delivery.payload.get("id")),
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        attempt_log=[AttemptPublic.model_validate(a) for a in attempts],
    )


@router.get(
    "/v1/webhook-deliveries",
    response_model=DeliveryList,
    summary="Your satker's deliveries, newest first, with every attempt",
    name="list_webhook_deliveries",
)
async def list_deliveries(
    actor: CurrentActor,
    session: Session,
    subscription: str | None = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: str | None = None,
    before: Annotated[
        DbBigInt | None, Query(description="Only deliveries older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryList:
    deliveries = await repository.list_deliveries(
        session,
        actor.satker,
        subscription_id=subscription,
        status=delivery_status,
        event_type=event_type,
        before_id=before,
        limit=limit,
    )
    attempts = await repository.attempts_of(session, [d.id for d in deliveries if d.id])
    items = [_public(d, attempts.get(d.id or 0, [])) for d in deliveries]
    next_before = items[-1].id if len(items) == limit else None
    return DeliveryList(items=items, next_before=next_before)


@router.get(
    "/v1/webhook-deliveries/{delivery_id}",
    response_model=DeliveryPublic,
    summary="One delivery with every attempt",
    name="get_webhook_delivery",
    responses=problem_responses(404),
)
async def get_delivery(
    delivery_id: DbBigInt, actor: CurrentActor, session: Session
) -> DeliveryPublic:
    found = await repository.get_delivery(session, actor.satker, delivery_id)
    if found is None:
        raise service.WebhookDeliveryNotFound(f"No webhook delivery {delivery_id}")
    attempts = await repository.attempts_of(session, [delivery_id])
    return _public(found[0], attempts.get(delivery_id, []))


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryPublic,
    summary="Attempt the delivery again now (admin); a finished one restarts its retries",
    name="redeliver_webhook",
    responses=problem_responses(404, 409),
)
async def redeliver(
    delivery_id: DbBigInt,
    actor: Admin,
    work: Work,
) -> DeliveryPublic:
    delivery, job = await service.redeliver(work.session, actor.satker, delivery_id, now=utcnow())
    # Queued once committed. A lost one is not lost work: the delivery is due in the
    # database and the worker's sweep queues it.
    work.send(job)
    attempts = await repository.attempts_of(work.session, [delivery_id])
    return _public(delivery, attempts.get(delivery_id, []))
