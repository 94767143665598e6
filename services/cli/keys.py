"""`alur keys`: the keys Alur signs its access tokens with (see `services.core.auth.keys`)."""

from __future__ import annotations

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.records import _run
from services.core.auth import keys
from services.core.db import utcnow
from services.core.logging import configure_logging
from services.core.settings import get_settings

keys_app = typer.Typer(help="The keys Alur signs its access tokens with.", no_args_is_help=True)


@keys_app.callback()
def _logging() -> None:
    # What the key functions log goes to stderr: stdout is the command's answer.
    configure_logging(get_settings().log)


@keys_app.command("rotate")
def rotate() -> None:
    """Make a new signing key. The old one keeps verifying its tokens until they have
    expired; keys past that are retired (their private half wiped). Every replica signs
    with the new key within half a minute."""

    async def work(session: AsyncSession) -> keys.Rotation:
        return await keys.rotate(session, get_settings().auth, utcnow())

    rotation = _run(work)
    typer.echo(f"signing key {rotation.current}")
    for kid in rotation.superseded:
        typer.echo(f"superseded {kid} (verifies its tokens until they expire)")
    for kid in rotation.retired:
        typer.echo(f"retired {kid}")


@keys_app.command("list")
def list_keys() -> None:
    """Print the keys that verify now: kid, created, and whether it signs."""

    async def work(session: AsyncSession) -> list[tuple[str, str, bool]]:
        live = await keys.live_keys(session, get_settings().auth, utcnow())
        return [(k.kid, k.created_at.isoformat(), k.superseded_at is None) for k in live]

    for kid, created, signing in _run(work):
        typer.echo(f"{kid}\t{created}\t{'signing' if signing else 'verifying'}")
