"""Acting officials and who holds a role.

An acting assignment gives a person a role in a satker for a period: *Plh* (pelaksana
harian) while the holder is briefly away, *Plt* (pelaksana tugas) while the post is
vacant. During the period the person holds the role for tasks, the inbox, escalation
and notifications; it ends by itself (or earlier, when an admin ends it).

Where the period is checked: at request time. The API attaches to each request's actor
the assignments in effect at that moment (`ActingRegistry`, a per-process copy of the
assignments read again every `ACTING_CACHE_SECONDS`), whatever token it came with — one
of Alur's, minted before the period began, or an identity provider's (matched by
username = `sub` and satker). So an assignment starts and ends on the second, and a
new or ended one reaches every replica within the cache time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.core.audit.findings import record_finding
from services.core.db import unit_of_work, utcnow
from services.core.engine.state import ActingRole
from services.core.errors import AlurError, NotFound
from services.core.people.models import ActingRecord, PersonRecord
from services.core.people.service import PersonNotFound, check_roles
from services.core.satkers.service import SatkerDirectory, SatkerNotFound

KINDS = ("plh", "plt")
# A Plt may stand in for a vacant post for long; two years bounds a typing mistake.
MAX_PERIOD = timedelta(days=731)
# How long a process keeps its copy of the assignments in effect.
ACTING_CACHE_SECONDS = 30.0


class ActingNotFound(NotFound):
    code = "acting_not_found"
    title = "No such acting assignment"


class InvalidActing(AlurError):
    code = "invalid_acting"
    status = 422
    title = "The acting assignment is not valid"


def acting_role(record: ActingRecord) -> ActingRole:
    return ActingRole(
        id=record.id,
        role=record.role,
        satker=record.satker_id,
        kind=record.kind,
        holder=record.holder,
    )


def in_effect(record: ActingRecord, at: datetime) -> bool:
    return record.revoked_at is None and record.starts_at <= at < record.ends_at


async def create(
    session: AsyncSession,
    directory: SatkerDirectory,
    person: PersonRecord,
    *,
    role: str,
    satker: str,
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    reason: str,
    holder: str | None,
    known_roles: Mapping[str, object],
    created_by: str,
    now: datetime,
) -> ActingRecord:
    """`person` holds `role` in `satker` from `starts_at` to `ends_at`. Without a
    `holder`, the one person holding the role there (if exactly one) is the holder."""
    check_roles([role], known_roles)
    if kind not in KINDS:
        raise InvalidActing(f"kind is one of {', '.join(KINDS)}")
    if starts_at.utcoffset() is None or ends_at.utcoffset() is None:
        raise InvalidActing("from and to need a timezone offset")
    if ends_at <= starts_at:
        raise InvalidActing("to must come after from")
    if ends_at <= now:
        raise InvalidActing("the period has already ended")
    if ends_at - starts_at > MAX_PERIOD:
        raise InvalidActing(f"a period lasts at most {MAX_PERIOD.days} days")
    if not person.active:
        raise InvalidActing(f"{person.username} is not active")
    if satker not in directory.visible_from(person.satker_id):
        raise SatkerNotFound(
            f"{person.username} can act only in {person.satker_id} or a satker below it"
        )
    if satker == person.satker_id and role in person.roles:
        raise InvalidActing(f"{person.username} already holds {role} in {satker}")
    if holder is not None:
        found = await session.get(PersonRecord, holder)
        if found is None:
            raise PersonNotFound(f"No person {holder!r} to stand in for")
    else:
        holders = await role_holders(session, directory, [(satker, role)], starts_at)
        own = [h for h in holders[(satker, role)] if h.acting is None]
        holder = own[0].username if len(own) == 1 else None
    record = ActingRecord(
        id=str(uuid.uuid4()),
        username=person.username,
        role=role,
        satker_id=satker,
        kind=kind,
        holder=holder,
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        reason=reason,
        created_by=created_by,
        created_at=now,
    )
    session.add(record)
    await session.flush()
    return record


async def of_person(
    session: AsyncSession, username: str, *, current_after: datetime | None = None
) -> Sequence[ActingRecord]:
    """A person's assignments, newest first; with `current_after`, only those not
    ended or revoked by then."""
    query = select(ActingRecord).where(col(ActingRecord.username) == username)
    if current_after is not None:
        query = query.where(
            col(ActingRecord.revoked_at).is_(None), col(ActingRecord.ends_at) > current_after
        )
    query = query.order_by(col(ActingRecord.starts_at).desc(), col(ActingRecord.id))
    return (await session.scalars(query)).all()


async def get(session: AsyncSession, username: str, acting_id: str) -> ActingRecord:
    record = await session.get(ActingRecord, acting_id)
    if record is None or record.username != username:
        raise ActingNotFound(f"No acting assignment {acting_id!r} of {username}")
    return record


async def end(session: AsyncSession, record: ActingRecord, *, by: str, now: datetime) -> None:
    """End the assignment now (or cancel one not begun); an ended one stays ended."""
    if record.revoked_at is None and record.ends_at > now:
        record.revoked_at = now
        record.revoked_by = by
        await session.flush()


@dataclass(frozen=True)
class Holder:
    """Someone who holds a role in a satker at a given time, in their own right or in
    someone's stead (`acting`), with how to reach them."""

    username: str
    name: str
    satker: str
    email: str | None
    whatsapp: str | None
    telegram_chat_id: str | None
    acting: ActingRole | None = None


def _holder(person: PersonRecord, acting: ActingRole | None = None) -> Holder:
    return Holder(
        username=person.username,
        name=person.name,
        satker=person.satker_id,
        email=person.email,
        whatsapp=person.whatsapp,
        telegram_chat_id=person.telegram_chat_id,
        acting=acting,
    )


async def role_holders(
    session: AsyncSession,
    directory: SatkerDirectory,
    wanted: Iterable[tuple[str, str]],
    at: datetime,
) -> dict[tuple[str, str], list[Holder]]:
    """For each (satker, role): the active people holding the role there at `at` —
    its own holders, then those acting in it. A role that is a court's own lane above
    the satker (`pt` for a district court) is held by that court's people. An empty
    list means nobody: the caller reports it (escalation, notifications)."""
    wanted = set(wanted)
    if not wanted:
        return {}
    places: dict[tuple[str, str], list[str]] = {}
    for satker, role in wanted:
        above = [
            ancestor
            for ancestor in directory.ancestors(satker)
            if ancestor in directory and directory.get(ancestor).lane_role == role
        ]
        places[(satker, role)] = [satker, *above]
    every_place = sorted({place for found in places.values() for place in found})
    people = (
        await session.scalars(
            select(PersonRecord)
            .where(col(PersonRecord.satker_id).in_(every_place), col(PersonRecord.active))
            .order_by(col(PersonRecord.username))
        )
    ).all()
    grants = (
        await session.execute(
            select(ActingRecord, PersonRecord)
            .join(PersonRecord, col(PersonRecord.username) == col(ActingRecord.username))
            .where(
                col(ActingRecord.satker_id).in_(sorted({satker for satker, _ in wanted})),
                col(ActingRecord.role).in_(sorted({role for _, role in wanted})),
                col(ActingRecord.revoked_at).is_(None),
                col(ActingRecord.starts_at) <= at,
                col(ActingRecord.ends_at) > at,
                col(PersonRecord.active),
            )
            .order_by(col(ActingRecord.starts_at), col(ActingRecord.id))
        )
    ).all()
    result: dict[tuple[str, str], list[Holder]] = {}
    for (satker, role), where in places.items():
        holders = [_holder(p) for p in people if p.satker_id in where and role in p.roles]
        seen = {holder.username for holder in holders}
        for grant, person in grants:
            if (grant.satker_id, grant.role) == (satker, role) and person.username not in seen:
                holders.append(_holder(person, acting_role(grant)))
                seen.add(person.username)
        result[(satker, role)] = holders
    return result


@dataclass(frozen=True)
class _Assignment:
    role: ActingRole
    person_satker: str
    starts_at: datetime
    ends_at: datetime


class ActingRegistry:
    """This process's copy of the assignments not yet over (with their people's
    satkers), read again every `ACTING_CACHE_SECONDS` or when `forget` was called."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._by_username: dict[str, list[_Assignment]] = {}
        self._loaded_at: float | None = None
        # Bumped by `forget`: a load that was already reading keeps its rows but does
        # not count as fresh (it may have missed the change that was forgotten).
        self._generation = 0
        self._lock = asyncio.Lock()

    def forget(self) -> None:
        """Read the assignments again on next use (call it after committing a change)."""
        self._loaded_at = None
        self._generation += 1

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= ACTING_CACHE_SECONDS

    async def current(self, username: str, satker: str, now: datetime) -> tuple[ActingRole, ...]:
        """The roles `username` of `satker` holds in someone's stead at `now`."""
        if self._stale():
            async with self._lock:
                if self._stale():
                    await self._load()
        return tuple(
            assignment.role
            for assignment in self._by_username.get(username, ())
            if assignment.person_satker == satker
            and assignment.starts_at <= now < assignment.ends_at
        )

    async def _load(self) -> None:
        started, generation = self._clock(), self._generation
        async with unit_of_work(self._sessions, read_only=True) as session:
            rows = (
                await session.execute(
                    select(ActingRecord, col(PersonRecord.satker_id))
                    .join(PersonRecord, col(PersonRecord.username) == col(ActingRecord.username))
                    .where(
                        col(ActingRecord.revoked_at).is_(None),
                        col(ActingRecord.ends_at) > utcnow(),
                        col(PersonRecord.active),
                    )
                )
            ).all()
        by_username: dict[str, list[_Assignment]] = defaultdict(list)
        for record, person_satker in rows:
            by_username[record.username].append(
                _Assignment(acting_role(record), person_satker, record.starts_at, record.ends_at)
            )
        self._by_username = dict(by_username)
        if generation == self._generation:
            self._loaded_at = started


UNSTAFFED = "role.unstaffed"


async def report_unstaffed(
    session: AsyncSession,
    *,
    satker: str,
    role: str,
    cause: str,
    data: Mapping[str, object],
    now: datetime,
) -> None:
    """Nobody holds `role` in `satker` (nor acts in it) when someone had to be told
    (`cause`: an escalation, a notification): a `role.unstaffed` finding, published
    like every event and counted by the `alur_escalations_unstaffed` metric."""
    await record_finding(
        session,
        satker_id=satker,
        type=UNSTAFFED,
        subject=f"role:{role}",
        data={"role": role, "cause": cause, **data},
        now=now,
    )
