"""`alur hook-source`: register senders of inbound webhooks from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.records import _run
from services.core.db import utcnow
from services.core.satkers.service import load_directory
from services.core.webhooks_in import service as hooks
from services.core.webhooks_in.models import HookSourceRecord
from services.core.webhooks_in.service import HookKind

hook_source_app = typer.Typer(
    help="Senders of inbound webhooks (SATGAS SIPP, the high court).", no_args_is_help=True
)


@hook_source_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The {source} of POST /v1/hooks/{source}.")],
    kind: Annotated[HookKind, typer.Option(help="What its messages do.")],
    satkers: Annotated[str, typer.Option(help="Target satker ids, comma separated.")],
    description: Annotated[str, typer.Option(help="Who sends, e.g. SATGAS SIPP PT.")] = "",
) -> None:
    """Register a source and print its signing secret (shown only this once)."""

    async def work(session: AsyncSession) -> tuple[HookSourceRecord, str]:
        # The operator runs Alur itself: any satker in the tree may be a target.
        directory = await load_directory(session)
        return await hooks.create_source(
            session,
            name=name,
            kind=kind,
            satkers=[s.strip() for s in satkers.split(",") if s.strip()],
            description=description,
            allowed=[satker.id for satker in directory.all()],
            created_by="cli",
            now=utcnow(),
        )

    record, secret = _run(work)
    typer.echo(
        f"hook source {record.name} ({record.kind}) for {', '.join(record.satkers)}: "
        f"POST /v1/hooks/{record.name}; its secret, shown only now:",
        err=True,
    )
    typer.echo(secret)


@hook_source_app.command("list")
def list_sources() -> None:
    """Print the active sources (never their secrets)."""

    async def work(session: AsyncSession) -> list[HookSourceRecord]:
        directory = await load_directory(session)
        return await hooks.list_sources(session, [satker.id for satker in directory.all()])

    for source in _run(work):
        typer.echo(
            f"{source.name}  {source.kind}  {','.join(source.satkers)}  {source.description}"
        )
