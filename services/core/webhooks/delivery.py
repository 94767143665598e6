"""One delivery attempt: claim it, send the signed POST, record what happened.

The three steps keep the database out of the HTTP call: `claim` (a short transaction)
counts the attempt and leases the delivery for `LEASE`, `send` talks to the receiver,
`record` (another transaction) stores the outcome and schedules the next attempt. A
worker killed between the two leaves an unfinished attempt behind; once the lease runs
out the delivery is due again and the sweep sends it (at least once, never lost).

Outcomes: 2xx succeeded. Network errors, timeouts, 408, 429 and 5xx are retried after
the next delay of the schedule (with ±20 % jitter, never sooner than a 429/503's
`Retry-After`, which is capped at an hour); after the last one the delivery is dead.
Any other answer (3xx: redirects are not followed; 4xx) fails it at once, since the
same body would be refused again; 410 Gone also disables the subscription. A target
that resolves to a forbidden address fails it without sending anything.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.core.audit.service import record_finding
from services.core.settings import WebhookSettings
from services.core.webhooks import signing, targets
from services.core.webhooks.models import (
    WebhookAttemptRecord,
    WebhookDeliveryRecord,
    WebhookSubscriptionRecord,
)

# Longer than an attempt may take (its total timeout), so a live attempt keeps its lease.
LEASE = timedelta(seconds=150)
RETRY_AFTER_CAP = timedelta(hours=1)
JITTER = 0.2
UNFINISHED = "unfinished: the worker stopped before recording the result"
RESPONSE_EXCERPT_BYTES = 512
RETRYABLE_STATUSES = frozenset({408, 429})


def message_id(payload_id: str, subscription_id: str) -> str:
    """The webhook-id: the same for every attempt, different per subscription."""
    return f"{payload_id}_{subscription_id}"


def secrets_in_use(subscription: WebhookSubscriptionRecord, now: datetime) -> list[str]:
    found = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        found.append(subscription.previous_secret)
    return found


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt_id: int
    number: int
    url: str
    message_id: str
    body: bytes
    secrets: Sequence[str]


async def claim(
    session: AsyncSession,
    delivery_id: int,
    number: int,
    settings: WebhookSettings,
    now: datetime,
) -> Claim | None:
    """Start attempt `number`, or None when it is not this job's to make (made already,
    the delivery finished or is gone, the subscription disabled)."""
    delivery = await session.get(WebhookDeliveryRecord, delivery_id)
    if delivery is None or delivery.status != "pending" or delivery.attempts != number - 1:
        return None
    subscription = await session.get(WebhookSubscriptionRecord, delivery.subscription_id)
    assert subscription is not None  # deliveries go with their subscription
    if not subscription.active:
        _finish(delivery, "failed", now, error="the subscription is disabled")
        return None
    if delivery.attempts - delivery.schedule_offset >= len(settings.retry_schedule):
        # The last attempt of the schedule was interrupted: no retry is left.
        _finish(delivery, "dead", now, error=delivery.last_error or UNFINISHED)
        return None
    # Conditional, so two jobs racing for the same attempt cannot both win it.
    won = await session.execute(
        sa.update(WebhookDeliveryRecord)
        .where(col(WebhookDeliveryRecord.id) == delivery_id)
        .where(col(WebhookDeliveryRecord.status) == "pending")
        .where(col(WebhookDeliveryRecord.attempts) == number - 1)
        .values(attempts=number, next_attempt_at=now + LEASE, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return None
    attempt = WebhookAttemptRecord(
        delivery_id=delivery_id, number=number, attempted_at=now, error=UNFINISHED
    )
    session.add(attempt)
    await session.flush()
    assert attempt.id is not None
    return Claim(
        delivery_id=delivery_id,
        attempt_id=attempt.id,
        number=number,
        url=subscription.url,
        message_id=message_id(str(delivery.payload["id"]), subscription.id),
        body=orjson.dumps(delivery.payload),
        secrets=secrets_in_use(subscription, now),
    )


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None = None
    forbidden: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.forbidden:
            return False
        code = self.status_code
        return code is None or code >= 500 or code in RETRYABLE_STATUSES


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` header (seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # (Beyond the cap anyway when longer; and int() refuses thousands of digits.)
        delay = RETRY_AFTER_CAP if len(value) > 9 else timedelta(seconds=int(value))
    else:
        try:
            delay = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(delay, RETRY_AFTER_CAP))


async def send(http: httpx.AsyncClient, claimed: Claim, settings: WebhookSettings) -> Outcome:
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        target = await targets.target(claimed.url, allow_private=settings.allow_private_targets)
    except targets.WebhookUrlForbidden as exc:
        return Outcome(None, f"not sent: {exc.detail}", elapsed(), forbidden=True)
    except targets.WebhookUrlUnresolvable as exc:
        return Outcome(None, exc.detail, elapsed())
    timestamp = int(time.time())
    headers = signing.headers(claimed.secrets, claimed.message_id, timestamp, claimed.body)
    timeout = httpx.Timeout(settings.timeout_seconds, connect=settings.connect_timeout_seconds)
    try:
        # httpx times each phase; the attempt as a whole gets `timeout_seconds` too.
        async with (
            asyncio.timeout(settings.timeout_seconds),
            http.stream(
                "POST",
                target.url,
                content=claimed.body,
                headers={**headers, **target.headers},
                extensions=dict(target.extensions),
                timeout=timeout,
                follow_redirects=False,
            ) as response,
        ):
            excerpt = await _excerpt(response)
    except (TimeoutError, httpx.TimeoutException):
        return Outcome(None, f"timed out after {settings.timeout_seconds:g} s", elapsed())
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:1000], elapsed())
    code = response.status_code
    error = None if 200 <= code < 300 else f"HTTP {code}: {excerpt}".strip()[:1000]
    wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    return Outcome(code, error, elapsed(), retry_after=wait)


async def _excerpt(response: httpx.Response) -> str:
    """The start of the answer, for the delivery log; the rest is not downloaded."""
    data = b""
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= RESPONSE_EXCERPT_BYTES:
            break
    return data[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")


def _finish(
    delivery: WebhookDeliveryRecord, status: str, now: datetime, *, error: str | None
) -> None:
    delivery.status = status
    delivery.next_attempt_at = None
    delivery.last_error = error
    delivery.updated_at = now


def next_delay(schedule: Sequence[float], made: int, rng: random.Random) -> timedelta | None:
    """The wait before the next attempt after `made` attempts failed, None when none is
    left. Jitter spreads the retries of many deliveries that failed together."""
    if made >= len(schedule):
        return None
    return timedelta(seconds=schedule[made] * rng.uniform(1 - JITTER, 1 + JITTER))


async def record(
    session: AsyncSession,
    claimed: Claim,
    outcome: Outcome,
    settings: WebhookSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> str:
    """Store the outcome; returns the delivery's new state (for the job's log)."""
    attempt = await session.get(WebhookAttemptRecord, claimed.attempt_id)
    delivery = await session.get(WebhookDeliveryRecord, claimed.delivery_id)
    if attempt is None or delivery is None:
        return "gone"  # its subscription was deleted meanwhile
    attempt.status_code = outcome.status_code
    attempt.error = outcome.error
    attempt.duration_ms = outcome.duration_ms
    delivery.last_status_code = outcome.status_code
    subscription = await session.get(WebhookSubscriptionRecord, delivery.subscription_id)
    assert subscription is not None
    if outcome.succeeded:
        _finish(delivery, "succeeded", now, error=None)
        subscription.failing_since = subscription.last_failure_at = None
        await session.flush()
        return "succeeded"
    delay = None
    if outcome.retryable:
        made = delivery.attempts - delivery.schedule_offset
        delay = next_delay(settings.retry_schedule, made, rng or random.Random())
    if delay is not None:
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        delivery.status = "pending"
        delivery.next_attempt_at = now + delay
        delivery.last_error = outcome.error
        delivery.updated_at = now
        state = f"retry in {delay.total_seconds():.0f} s"
    else:
        state = "dead" if outcome.retryable else "failed"
        _finish(delivery, state, now, error=outcome.error)
    if outcome.status_code == 410:
        await disable(session, subscription, "the receiver answered 410 Gone", now)
    else:
        await _failed(session, subscription, settings, now)
    await session.flush()
    return state


async def _failed(
    session: AsyncSession,
    subscription: WebhookSubscriptionRecord,
    settings: WebhookSettings,
    now: datetime,
) -> None:
    limit = timedelta(days=settings.disable_after_days)
    last = subscription.last_failure_at
    # A quiet spell longer than the limit breaks the streak: the receiver may have been
    # fixed while nothing was sent to it.
    if subscription.failing_since is None or last is None or now - last > limit:
        subscription.failing_since = now
    subscription.last_failure_at = now
    if subscription.active and now - subscription.failing_since > limit:
        days = settings.disable_after_days
        await disable(session, subscription, f"every delivery failed for {days:g} days", now)


async def disable(
    session: AsyncSession, subscription: WebhookSubscriptionRecord, reason: str, now: datetime
) -> None:
    """Stop sending to a subscription and tell the satker (a finding, itself published)."""
    if not subscription.active:
        return
    subscription.active = False
    subscription.disabled_at = now
    subscription.disabled_reason = reason
    subscription.updated_at = now
    data: dict[str, Any] = {
        "subscription_id": subscription.id,
        "url": subscription.url,
        "reason": reason,
        "failing_since": (
            subscription.failing_since.isoformat() if subscription.failing_since else None
        ),
    }
    await record_finding(
        session,
        satker_id=subscription.satker_id,
        type="webhook.subscription_disabled",
        subject=f"webhook-subscription:{subscription.id}",
        data=data,
        now=now,
    )
