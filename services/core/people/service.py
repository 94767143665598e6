"""People of each satker: who they are, the roles they hold, how to reach them.

Who may manage a person: an admin of the person's satker or of a court above it (an
admin keeps `admin` on the satkers below its own, see `SatkerDirectory.effective_roles`).
A person reads their own record and edits their own contacts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import phonenumbers
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.engine.state import ADMIN_ROLE, Actor
from services.core.errors import AlurError, Conflict, NotFound
from services.core.people.models import PersonRecord
from services.core.satkers.service import SatkerDirectory, SatkerNotFound

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
USERNAME = re.compile(USERNAME_PATTERN)
# What a person may change of their own: how to reach them, and by which channels.
CONTACT_FIELDS = frozenset(
    {"email", "whatsapp", "telegram_chat_id", "notify_channels", "notify_digest"}
)
# Numbers written the local way (0812...) are read as Indonesian ones.
PHONE_REGION = "ID"
MAX_PAGE = 200


class PersonNotFound(NotFound):
    code = "person_not_found"
    title = "No such person"


class PersonExists(Conflict):
    code = "person_exists"
    title = "The username is taken"


class NipTaken(Conflict):
    code = "nip_taken"
    title = "Another person has this NIP"


class UnknownRole(AlurError):
    code = "unknown_role"
    status = 422
    title = "Not a role of the catalog"


class PersonFieldForbidden(AlurError):
    code = "person_field_forbidden"
    status = 403
    title = "You may change only your own contacts"


# --- values ------------------------------------------------------------------------------


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise ValueError(
            "a username is 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_nip(nip: str) -> str:
    """An 18-digit NIP: birth date (YYYYMMDD), appointment (YYYYMM), sex (1 or 2) and a
    sequence number (not 000). `ValueError` says which part is wrong."""
    if len(nip) != 18 or not nip.isascii() or not nip.isdigit():
        raise ValueError("a NIP is 18 digits")
    try:
        born = date(int(nip[0:4]), int(nip[4:6]), int(nip[6:8]))
    except ValueError:
        raise ValueError("a NIP starts with a birth date (YYYYMMDD)") from None
    year, month = int(nip[8:12]), int(nip[12:14])
    if not 1 <= month <= 12 or year < born.year:
        raise ValueError("digits 9-14 of a NIP are the appointment year and month (YYYYMM)")
    if nip[14] not in "12":
        raise ValueError("digit 15 of a NIP is 1 or 2")
    if nip[15:] == "000":
        raise ValueError("a NIP ends with a sequence number from 001")
    return nip


def e164(number: str) -> str:
    """A phone number as E.164 (`+6281234567890`); a local Indonesian form (0812-...)
    is accepted. `ValueError` when it is not a valid number."""
    try:
        parsed = phonenumbers.parse(number, PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number (E.164, e.g. +6281234567890)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number (E.164, e.g. +6281234567890)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_EMAIL = TypeAdapter(EmailStr)


def check_email(address: str) -> str:
    try:
        return _EMAIL.validate_python(address)
    except ValidationError:
        raise ValueError(f"{address!r} is not an e-mail address") from None


def check_telegram_chat_id(chat_id: str) -> str:
    """A Telegram chat id: an integer (negative for groups), as text."""
    if not re.fullmatch(r"-?[0-9]{1,20}", chat_id):
        raise ValueError("a Telegram chat id is an integer, e.g. 123456789 or -1001234567890")
    return chat_id


def check_roles(roles: Iterable[str], known: Mapping[str, object]) -> list[str]:
    wanted = sorted(set(roles))
    unknown = [role for role in wanted if role not in known]
    if unknown:
        raise UnknownRole(
            f"Not in the catalog's roles.yaml: {', '.join(unknown)}",
            extra={"unknown_roles": unknown},
        )
    return wanted


# --- who may -----------------------------------------------------------------------------


def is_admin_of(directory: SatkerDirectory, actor: Actor, satker: str) -> bool:
    """Whether the actor administers `satker` (its own, or one below its own)."""
    return ADMIN_ROLE in directory.effective_roles(actor.roles, actor.satker, satker)


def admin_satker(directory: SatkerDirectory, actor: Actor, satker: str) -> str:
    """`satker` if the actor administers it, else 404 (a satker it cannot see) — a
    satker it can see but not administer answers the same, so an admin of one court
    learns nothing of the others."""
    if satker not in directory or not is_admin_of(directory, actor, satker):
        raise SatkerNotFound(f"No satker {satker!r} among the ones you administer")
    return satker


def readable(directory: SatkerDirectory, actor: Actor, person: PersonRecord) -> bool:
    return person.username == actor.sub or is_admin_of(directory, actor, person.satker_id)


# --- use cases ---------------------------------------------------------------------------


async def get(session: AsyncSession, username: str) -> PersonRecord | None:
    return await session.get(PersonRecord, username)


async def visible_person(
    session: AsyncSession, directory: SatkerDirectory, actor: Actor, username: str
) -> PersonRecord:
    """The person if the actor may read them (themselves, or as an admin); 404 else."""
    person = await get(session, username)
    if person is None or not readable(directory, actor, person):
        raise PersonNotFound(f"No person {username!r}")
    return person


async def create(
    session: AsyncSession,
    *,
    username: str,
    satker: str,
    name: str,
    roles: Sequence[str],
    known_roles: Mapping[str, object],
    nip: str | None = None,
    email: str | None = None,
    whatsapp: str | None = None,
    telegram_chat_id: str | None = None,
    notify_channels: Mapping[str, Sequence[str]] | None = None,
    notify_digest: bool = False,
    active: bool = True,
    password_hash: str | None = None,
    now: datetime,
) -> PersonRecord:
    if await get(session, username) is not None:
        raise PersonExists(f"The username {username!r} is taken")
    person = PersonRecord(
        username=check_username(username),
        satker_id=satker,
        name=name,
        nip=nip,
        roles=check_roles(roles, known_roles),
        email=email,
        whatsapp=whatsapp,
        telegram_chat_id=telegram_chat_id,
        # Checked at the edge (`services.core.notifications.kinds.check_channels`).
        notify_channels={
            kind: list(channels) for kind, channels in (notify_channels or {}).items()
        },
        notify_digest=notify_digest,
        active=active,
        password_hash=password_hash,
        password_changed_at=now if password_hash else None,
        created_at=now,
        updated_at=now,
    )
    session.add(person)
    await _flush(session, person)
    return person


async def apply_changes(
    session: AsyncSession,
    person: PersonRecord,
    changes: Mapping[str, Any],
    *,
    known_roles: Mapping[str, object],
    now: datetime,
) -> PersonRecord:
    """Apply `changes` (field -> value, already checked by the caller for who may make
    them) to the record. What a change means for the person's sign-ins is
    `services.core.auth.accounts.update_person`'s, which uses this."""
    for field, value in changes.items():
        if field == "roles":
            value = check_roles(value, known_roles)
        setattr(person, field, value)
    person.updated_at = now
    await _flush(session, person)
    return person


def check_changes(
    directory: SatkerDirectory, actor: Actor, person: PersonRecord, changes: Mapping[str, Any]
) -> None:
    """403 unless the actor may make every change: an admin anything, a person their
    own contacts."""
    if is_admin_of(directory, actor, person.satker_id):
        if "satker_id" in changes:
            admin_satker(directory, actor, changes["satker_id"])
        return
    forbidden = sorted(set(changes) - CONTACT_FIELDS)
    if forbidden:
        raise PersonFieldForbidden(
            f"Only an admin may change {', '.join(forbidden)}",
            extra={"fields": forbidden},
        )


async def store_password_hash(
    session: AsyncSession, person: PersonRecord, password_hash: str, *, now: datetime
) -> None:
    """Keep a new password's hash (`services.core.auth.accounts.set_password` also signs
    the old one's sessions out)."""
    person.password_hash = password_hash
    person.password_changed_at = person.updated_at = now
    await session.flush()


async def listing(
    session: AsyncSession,
    satkers: Iterable[str],
    *,
    role: str | None = None,
    active: bool | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[PersonRecord], str | None]:
    """A page of the people of `satkers` by username, and the username to continue
    after (None on the last page)."""
    query = select(PersonRecord).where(col(PersonRecord.satker_id).in_(sorted(satkers)))
    if active is not None:
        query = query.where(col(PersonRecord.active) == active)
    query = query.order_by(col(PersonRecord.username)).limit(MAX_PAGE)
    limit = max(1, min(limit, MAX_PAGE))
    people: list[PersonRecord] = []
    # Roles are a JSON list, filtered here: rows are read in username order until the
    # page is full (a satker has tens of people, a court tree hundreds).
    last = after
    while True:
        page = query if last is None else query.where(col(PersonRecord.username) > last)
        batch = (await session.scalars(page)).all()
        people += [person for person in batch if role is None or role in person.roles]
        if len(people) > limit or len(batch) < MAX_PAGE:
            break
        last = batch[-1].username
    return people[:limit], people[limit - 1].username if len(people) > limit else None


async def _flush(session: AsyncSession, person: PersonRecord) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        if "nip" in text:
            raise NipTaken(f"Another person has the NIP {person.nip}") from None
        if "satker" in text or "foreign key" in text:
            raise SatkerNotFound(f"No satker {person.satker_id!r}") from None
        raise PersonExists(f"The username {person.username!r} is taken") from None
