"""`alur audit` and `alur satker`: commands over the database for operators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.audit.hashchain import ChainReport
from services.core.db import create_engine, session_factory, unit_of_work, utcnow
from services.core.instances.service import verify_stored
from services.core.satkers import service as satkers
from services.core.settings import get_settings

audit_app = typer.Typer(help="Check the hash-chained audit trail.", no_args_is_help=True)
satker_app = typer.Typer(help="Manage satkers (courts).", no_args_is_help=True)

T = TypeVar("T")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(get_settings())
        try:
            async with unit_of_work(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@audit_app.command("verify")
def verify(
    instance: Annotated[str | None, typer.Option(help="One instance; default all.")] = None,
) -> None:
    """Recompute every event's hash; exit 1 if any trail was edited or cut."""

    async def work(session: AsyncSession) -> tuple[int, list[ChainReport]]:
        return await verify_stored(session, [instance] if instance else None)

    checked, broken = _run(work)
    for report in broken:
        for problem in report.problems:
            typer.echo(f"{report.instance_id}: {problem}", err=True)
    if instance and not checked:
        typer.echo(f"no instance {instance}", err=True)
        raise typer.Exit(2)
    if broken:
        typer.echo(f"{len(broken)} of {checked} audit trail(s) fail verification", err=True)
        raise typer.Exit(1)
    typer.echo(f"{checked} audit trail(s) verified")


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        message = f"{name!r} is not an IANA time zone (e.g. Asia/Jakarta)"
        raise typer.BadParameter(message) from error
    return name


@satker_app.command("add")
def add(
    satker_id: Annotated[str, typer.Argument(help="Id, e.g. pn-curup.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    parent: Annotated[str | None, typer.Option(help="Parent satker id.")] = None,
    lane_role: Annotated[
        str | None, typer.Option(help="Lane this court acts in on its children, e.g. pt.")
    ] = None,
    timezone: Annotated[
        str, typer.Option(help="IANA timezone.", callback=_timezone)
    ] = "Asia/Jakarta",
) -> None:
    """Add a satker to the tree."""

    async def work(session: AsyncSession) -> None:
        await satkers.create_satker(
            session,
            satker_id=satker_id,
            name=name,
            parent_id=parent,
            lane_role=lane_role,
            timezone=timezone,
            now=utcnow(),
        )

    _run(work)
    typer.echo(f"satker {satker_id} added")


@satker_app.command("list")
def list_satkers() -> None:
    """Print the satker tree."""

    async def work(session: AsyncSession) -> satkers.SatkerDirectory:
        return await satkers.load_directory(session)

    directory = _run(work)

    def show(parent: str | None, depth: int) -> None:
        for satker in directory.all():
            if satker.parent_id == parent:
                typer.echo(f"{'  ' * depth}{satker.id}  {satker.name}  ({satker.timezone})")
                show(satker.id, depth + 1)

    show(None, 0)
