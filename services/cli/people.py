"""`alur people`: add people (a court's first admin included), list them, set passwords."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.records import _run
from services.core.auth import accounts, passwords
from services.core.catalog.loader import load_catalog
from services.core.db import utcnow
from services.core.logging import configure_logging
from services.core.people import service as people
from services.core.people.models import PersonRecord
from services.core.satkers.service import SatkerNotFound, load_directory
from services.core.settings import get_settings

people_app = typer.Typer(help="People of the satkers, and their passwords.", no_args_is_help=True)


@people_app.callback()
def _logging() -> None:
    # What the services log goes to stderr: stdout is the command's answer.
    configure_logging(get_settings().log)


T = TypeVar("T")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]


def _checked(check: Callable[[str], T], value: str, what: str) -> T:
    try:
        return check(value)
    except ValueError as exc:
        typer.echo(f"error: {what}: {exc}", err=True)
        raise typer.Exit(2) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        text = sys.stdin.readline().rstrip("\r\n")
    else:
        text = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return _checked(passwords.check_policy, text, "password")


def _hash(password: str) -> str:
    return asyncio.run(passwords.hash_password(get_settings().auth, password))


@people_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="What the person signs in with.")],
    name: Annotated[str, typer.Option(help="Full name (with titles), e.g. 'Budi, S.Kom.'.")],
    satker: Annotated[str, typer.Option(help="The satker (court) id, e.g. pn-tais.")],
    roles: Annotated[str, typer.Option(help="Role ids, comma separated (admin for an admin).")],
    nip: Annotated[str | None, typer.Option(help="18-digit NIP.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    whatsapp: Annotated[str | None, typer.Option(help="WhatsApp number (E.164).")] = None,
    telegram_chat_id: Annotated[str | None, typer.Option(help="Telegram chat id.")] = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="No password (an identity provider signs in).")
    ] = False,
) -> None:
    """Add a person; asks for their password unless --no-password. The operator's tool:
    a court bootstraps its first admin with it (--roles admin)."""
    username = _checked(people.check_username, username, "username")
    if nip is not None:
        nip = _checked(people.check_nip, nip, "nip")
    if whatsapp is not None:
        whatsapp = _checked(people.e164, whatsapp, "whatsapp")
    if telegram_chat_id is not None:
        telegram_chat_id = _checked(people.check_telegram_chat_id, telegram_chat_id, "telegram")
    if email is not None:
        email = _checked(people.check_email, email, "email")
    password_hash = None if no_password else _hash(_password(password_stdin))
    known = {role.id: role for role in load_catalog(get_settings().catalog.path).roles}

    async def work(session: AsyncSession) -> PersonRecord:
        if satker not in await load_directory(session):
            raise SatkerNotFound(f"No satker {satker!r} (`alur satker list`)")
        return await people.create(
            session,
            username=username,
            satker=satker,
            name=name,
            roles=[role.strip() for role in roles.split(",") if role.strip()],
            known_roles=known,
            nip=nip,
            email=email,
            whatsapp=whatsapp,
            telegram_chat_id=telegram_chat_id,
            password_hash=password_hash,
            now=utcnow(),
        )

    person = _run(work)
    typer.echo(f"added {person.username} ({person.name}) to {person.satker_id}: {person.roles}")


@people_app.command("list")
def list_people(
    satker: Annotated[str | None, typer.Option(help="One satker; default all.")] = None,
) -> None:
    """Print username, satker, roles, active and name of each person."""

    async def work(session: AsyncSession) -> list[PersonRecord]:
        directory = await load_directory(session)
        satkers = [satker] if satker else [s.id for s in directory.all()]
        found: list[PersonRecord] = []
        after = None
        while True:
            page, after = await people.listing(session, satkers, after=after, limit=200)
            found += page
            if after is None:
                return found

    for person in _run(work):
        state = "active" if person.active else "inactive"
        typer.echo(
            f"{person.username}\t{person.satker_id}\t{','.join(person.roles)}\t{state}\t"
            f"{person.name}"
        )


@people_app.command("set-password")
def set_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a person's password (asks for it); their refresh tokens are revoked."""
    password_hash = _hash(_password(password_stdin))

    async def work(session: AsyncSession) -> None:
        person = await people.get(session, username)
        if person is None:
            raise people.PersonNotFound(f"No person {username!r}")
        await accounts.set_password(session, person, password_hash, now=utcnow())

    _run(work)
    typer.echo(f"password of {username} set")
