"""Delivery attempts: claim them, send the signed POSTs, record what happened.

The three steps keep the database out of the HTTP calls: `claim_due` (or `claim`, for
one given attempt) is a short transaction that counts the attempts and leases their
deliveries for `LEASE`, `send` talks to the receiver, `record` (another transaction)
stores the outcomes and schedules the next attempts. Claims and records work on many
attempts at once, a few statements for a whole batch. A worker killed between the two
leaves unfinished attempts behind; once their lease runs out the deliveries are due
again and the sweep sends them (at least once, never lost).

Outcomes: 2xx succeeded. Network errors, timeouts, 408, 429 and 5xx are retried after
the next delay of the schedule (with ±20 % jitter, never sooner than a 429/503's
`Retry-After`, which is capped at an hour); after the last one the delivery is dead.
Any other answer (3xx: redirects are not followed; 4xx) fails it at once, since the
same body would be refused again; 410 Gone also disables the subscription. A target
that resolves to a forbidden address fails it without sending anything.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.settings import WebhookSettings
from services.core.webhooks_out import signing, targets
from services.core.webhooks_out.models import (
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

_DELIVERY: sa.Table = WebhookDeliveryRecord.__table__  # type: ignore[attr-defined]
_ATTEMPT: sa.Table = WebhookAttemptRecord.__table__  # type: ignore[attr-defined]


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
    subscription_id: str = ""
    # Attempts made before the current retry schedule began (see `record`).
    schedule_offset: int = 0


async def claim(
    session: AsyncSession,
    delivery_id: int,
    number: int,
    settings: WebhookSettings,
    now: datetime,
) -> Claim | None:
    """Start attempt `number`, or None when it is not this job's to make (made already,
    being made, the delivery finished or is gone, the subscription disabled)."""
    query = (
        _candidates()
        .where(_DELIVERY.c.id == delivery_id)
        .where(_DELIVERY.c.status == "pending")
        .where(_DELIVERY.c.attempts == number - 1)
    )
    rows = (await session.execute(query)).all()
    claimed = await _claim(session, rows, _DELIVERY.c.attempts == number - 1, settings, now)
    return claimed[0] if claimed else None


async def claim_due(
    session: AsyncSession, settings: WebhookSettings, now: datetime, *, limit: int
) -> list[Claim]:
    """Start the next attempts of up to `limit` deliveries now due: first those attempted
    before (retries, expired leases: from their own index, so a backlog of first
    attempts does not hide them), then first attempts, oldest first. Claimers in other
    workers skip the rows this one holds (PostgreSQL); on SQLite the conditional update
    lets one claimer win each row."""
    due = (
        _candidates()
        .where(_DELIVERY.c.status == "pending")
        .where(_DELIVERY.c.next_attempt_at <= now)
        .order_by(_DELIVERY.c.next_attempt_at)
    )
    rows = list((await session.execute(due.where(_DELIVERY.c.attempts > 0).limit(limit))).all())
    if len(rows) < limit:
        first = due.where(_DELIVERY.c.attempts == 0).limit(limit - len(rows))
        rows += (await session.execute(first)).all()
    return await _claim(session, rows, _DELIVERY.c.next_attempt_at <= now, settings, now)


def _candidates() -> sa.Select[Any]:
    return sa.select(
        _DELIVERY.c.id,
        _DELIVERY.c.subscription_id,
        _DELIVERY.c.attempts,
        _DELIVERY.c.schedule_offset,
        _DELIVERY.c.payload,
        _DELIVERY.c.last_error,
    ).with_for_update(skip_locked=True)


async def _claim(
    session: AsyncSession,
    rows: Sequence[sa.Row[Any]],
    unchanged: sa.ColumnElement[bool],
    settings: WebhookSettings,
    now: datetime,
) -> list[Claim]:
    """Lease the candidate deliveries and open their next attempts; those of a disabled
    subscription fail, those out of retries are dead. `unchanged` holds of a row as
    read and no longer once another claimer has taken it (SQLite has no row locks)."""
    if not rows:
        return []
    subscriptions = await _subscriptions(session, {row.subscription_id for row in rows})
    ready = []
    for row in rows:
        subscription = subscriptions.get(row.subscription_id)
        if subscription is None:  # deleted meanwhile: its deliveries go with it
            continue
        if not subscription.active:
            error = "the subscription is disabled"
            await _finish_row(session, row.id, unchanged, "failed", now, error)
        elif row.attempts - row.schedule_offset >= len(settings.retry_schedule):
            # The last attempt of the schedule was interrupted: no retry is left.
            error = row.last_error or UNFINISHED
            await _finish_row(session, row.id, unchanged, "dead", now, error)
        else:
            ready.append(row)
    if not ready:
        return []
    # Conditional, so two claimers racing for the same attempt cannot both win it.
    won = set(
        (
            await session.execute(
                sa.update(_DELIVERY)
                .where(_DELIVERY.c.id.in_([row.id for row in ready]))
                .where(_DELIVERY.c.status == "pending")
                .where(unchanged)
                .values(
                    attempts=_DELIVERY.c.attempts + 1,
                    next_attempt_at=now + LEASE,
                    updated_at=now,
                )
                .returning(_DELIVERY.c.id)
            )
        ).scalars()
    )
    ready = [row for row in ready if row.id in won]
    if not ready:
        return []
    opened = await session.execute(
        sa.insert(_ATTEMPT).returning(_ATTEMPT.c.id, _ATTEMPT.c.delivery_id),
        [
            {
                "delivery_id": row.id,
                "number": row.attempts + 1,
                "attempted_at": now,
                "error": UNFINISHED,
            }
            for row in ready
        ],
    )
    attempt_ids = {delivery_id: attempt_id for attempt_id, delivery_id in opened.all()}
    claims = []
    for row in ready:
        subscription = subscriptions[row.subscription_id]
        claims.append(
            Claim(
                delivery_id=row.id,
                attempt_id=attempt_ids[row.id],
                number=row.attempts + 1,
                url=subscription.url,
                message_id=message_id(str(row.payload["id"]), subscription.id),
                body=orjson.dumps(row.payload),
                secrets=secrets_in_use(subscription, now),
                subscription_id=subscription.id,
                schedule_offset=row.schedule_offset,
            )
        )
    return claims


async def _subscriptions(
    session: AsyncSession, ids: Iterable[str]
) -> dict[str, WebhookSubscriptionRecord]:
    query = select(WebhookSubscriptionRecord).where(
        col(WebhookSubscriptionRecord.id).in_(sorted(set(ids)))
    )
    return {s.id: s for s in (await session.scalars(query)).all()}


async def _finish_row(
    session: AsyncSession,
    delivery_id: int,
    unchanged: sa.ColumnElement[bool],
    status: str,
    now: datetime,
    error: str,
) -> None:
    await session.execute(
        sa.update(_DELIVERY)
        .where(_DELIVERY.c.id == delivery_id)
        .where(_DELIVERY.c.status == "pending")
        .where(unchanged)
        .values(status=status, next_attempt_at=None, last_error=error, updated_at=now)
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


async def resolve(url: str, settings: WebhookSettings) -> targets.Target | Outcome:
    """Where to send an attempt to `url`, or the outcome of not sending it."""
    started = time.perf_counter()
    try:
        return await targets.target(url, allow_private=settings.allow_private_targets)
    except targets.WebhookUrlForbidden as exc:
        return Outcome(None, f"not sent: {exc.detail}", _since(started), forbidden=True)
    except targets.WebhookUrlUnresolvable as exc:
        return Outcome(None, exc.detail, _since(started))


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


async def send(
    http: aiohttp.ClientSession,
    claimed: Claim,
    settings: WebhookSettings,
    target: targets.Target | Outcome | None = None,
) -> Outcome:
    """Make the attempt. `target` is `resolve(claimed.url)` when the caller resolved it
    already (once for the many attempts of a batch going to one URL)."""
    started = time.perf_counter()
    if target is None:
        target = await resolve(claimed.url, settings)
    if isinstance(target, Outcome):
        return target
    timestamp = int(time.time())
    headers = signing.headers(claimed.secrets, claimed.message_id, timestamp, claimed.body)
    timeout = aiohttp.ClientTimeout(
        total=settings.timeout_seconds, connect=settings.connect_timeout_seconds
    )
    try:
        # `total` covers the whole attempt: connecting, sending, reading the excerpt.
        async with http.post(
            target.url,
            data=claimed.body,
            headers={**headers, **target.headers},
            server_hostname=target.extensions.get("sni_hostname"),
            timeout=timeout,
            allow_redirects=False,
        ) as response:
            excerpt = await _excerpt(response)
    except TimeoutError:
        return Outcome(None, f"timed out after {settings.timeout_seconds:g} s", _since(started))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:1000], _since(started))
    code = response.status
    error = None if 200 <= code < 300 else f"HTTP {code}: {excerpt}".strip()[:1000]
    wait = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    return Outcome(code, error, _since(started), retry_after=wait)


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    """The start of the answer, for the delivery log; the rest is not downloaded."""
    data = b""
    while len(data) < RESPONSE_EXCERPT_BYTES:
        chunk = await response.content.read(RESPONSE_EXCERPT_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def next_delay(schedule: Sequence[float], made: int, rng: random.Random) -> timedelta | None:
    """The wait before the next attempt after `made` attempts failed, None when none is
    left. Jitter spreads the retries of many deliveries that failed together."""
    if made >= len(schedule):
        return None
    return timedelta(seconds=schedule[made] * rng.uniform(1 - JITTER, 1 + JITTER))


@dataclass(frozen=True)
class _Next:
    """What an outcome makes of its delivery."""

    status: str
    next_attempt_at: datetime | None
    state: str  # for the log


def _next(
    claimed: Claim, outcome: Outcome, settings: WebhookSettings, now: datetime, rng: random.Random
) -> _Next:
    if outcome.succeeded:
        return _Next("succeeded", None, "succeeded")
    delay = None
    if outcome.retryable:
        made = claimed.number - claimed.schedule_offset
        delay = next_delay(settings.retry_schedule, made, rng)
    if delay is None:
        state = "dead" if outcome.retryable else "failed"
        return _Next(state, None, state)
    if outcome.retry_after is not None:
        delay = max(delay, outcome.retry_after)
    return _Next("pending", now + delay, f"retry in {delay.total_seconds():.0f} s")


async def record(
    session: AsyncSession,
    claimed: Claim,
    outcome: Outcome,
    settings: WebhookSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> str:
    """Store one outcome; returns the delivery's new state (for the job's log)."""
    (state,) = await record_many(session, [(claimed, outcome)], settings, now, rng)
    return state


async def record_many(
    session: AsyncSession,
    results: Sequence[tuple[Claim, Outcome]],
    settings: WebhookSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> list[str]:
    """Store the outcomes of many attempts in a few statements; returns each delivery's
    new state, in order. A delivery claimed again since (its lease ran out) or gone
    (its subscription deleted) keeps the outcome in its attempt log only."""
    if not results:
        return []
    rng = rng or random.Random()
    await session.execute(
        sa.update(_ATTEMPT)
        .where(_ATTEMPT.c.id == sa.bindparam("attempt_id"))
        .values(
            status_code=sa.bindparam("new_status_code"),
            error=sa.bindparam("new_error"),
            duration_ms=sa.bindparam("new_duration_ms"),
        ),
        [
            {
                "attempt_id": claimed.attempt_id,
                "new_status_code": outcome.status_code,
                "new_error": outcome.error,
                "new_duration_ms": outcome.duration_ms,
            }
            for claimed, outcome in results
        ],
    )
    # Locked, so a claim of the same rows waits for this record to commit.
    locked = await session.execute(
        sa.select(_DELIVERY.c.id, _DELIVERY.c.attempts)
        .where(_DELIVERY.c.id.in_(sorted({c.delivery_id for c, _ in results})))
        .where(_DELIVERY.c.status == "pending")
        .with_for_update()
    )
    current: dict[int, int] = {row.id: row.attempts for row in locked.all()}
    states: list[str] = []
    changes = []
    applied = []
    for claimed, outcome in results:
        if current.get(claimed.delivery_id) != claimed.number:
            states.append("superseded")
            continue
        upcoming = _next(claimed, outcome, settings, now, rng)
        states.append(upcoming.state)
        applied.append((claimed, outcome))
        changes.append(
            {
                "delivery_id": claimed.delivery_id,
                "new_status": upcoming.status,
                "new_next_attempt_at": upcoming.next_attempt_at,
                "new_last_status_code": outcome.status_code,
                "new_last_error": None if outcome.succeeded else outcome.error,
                "new_updated_at": now,
            }
        )
    if changes:
        await session.execute(
            sa.update(_DELIVERY)
            .where(_DELIVERY.c.id == sa.bindparam("delivery_id"))
            .values(
                status=sa.bindparam("new_status"),
                next_attempt_at=sa.bindparam("new_next_attempt_at"),
                last_status_code=sa.bindparam("new_last_status_code"),
                last_error=sa.bindparam("new_last_error"),
                updated_at=sa.bindparam("new_updated_at"),
            ),
            changes,
        )
    await _subscriptions_learn(session, applied, settings, now)
    await session.flush()
    return states


async def _subscriptions_learn(
    session: AsyncSession,
    results: Sequence[tuple[Claim, Outcome]],
    settings: WebhookSettings,
    now: datetime,
) -> None:
    """A success ends a subscription's failure streak; a failure extends it (and may
    disable the subscription, as a 410 Gone does at once)."""
    if not results:
        return
    subscriptions = await _subscriptions(session, {c.subscription_id for c, _ in results})
    for claimed, outcome in results:
        subscription = subscriptions.get(claimed.subscription_id)
        if subscription is None:
            continue
        if outcome.succeeded:
            subscription.failing_since = subscription.last_failure_at = None
        elif outcome.status_code == 410:
            await disable(session, subscription, "the receiver answered 410 Gone", now)
        else:
            await _failed(session, subscription, settings, now)


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
