"""`alur token`: mint bearer tokens signed with the configured HS256 secret."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.errors import refuse
from services.cli.records import _run
from services.core.catalog.loader import ROLES_FILE, load_catalog
from services.core.identity.tokens import issue_token
from services.core.satkers.models import SatkerRecord
from services.core.settings import get_settings

token_app = typer.Typer(help="Mint bearer tokens for development and tests.", no_args_is_help=True)

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    """`8h`, `30m`, `45s`, `1d`, or a bare number of seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or int(match[1]) == 0:
        raise typer.BadParameter(
            f"{text!r} is not a positive duration (e.g. 8h, 30m, 45s, 1d or 3600 seconds)",
            param_hint="'--ttl'",
        )
    return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


@token_app.command("issue")
def issue(
    sub: Annotated[str, typer.Option(help="Subject: the user's stable id.")],
    roles: Annotated[str, typer.Option(help="Catalog role ids, comma separated.")],
    satker: Annotated[str, typer.Option(help="The satker (court) the user acts for.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 8h, 30m, 1d or seconds.")] = "8h",
) -> None:
    """Print a token signed with ALUR_AUTH__JWT_SECRET (HS256), for roles of the catalog
    and a satker of the database."""
    settings = get_settings()
    auth = settings.auth
    if "HS256" not in auth.algorithms:
        # The API would refuse the token, so minting it would only mislead.
        raise refuse("HS256 is not in ALUR_AUTH__ALGORITHMS; the API would refuse it")
    role_ids = [role.strip() for role in roles.split(",") if role.strip()]
    if not role_ids:
        raise typer.BadParameter("give at least one role id", param_hint="'--roles'")
    lifetime = parse_ttl(ttl)
    # The API would accept a token for any role or satker and then find nothing it allows.
    known = [role.id for role in load_catalog(settings.catalog.path).roles]
    unknown = [role for role in role_ids if role not in known]
    if unknown:
        raise refuse(
            f"no role {', '.join(unknown)} in {settings.catalog.path / ROLES_FILE} "
            f"(roles: {', '.join(known)})"
        )

    async def find_satker(session: AsyncSession) -> SatkerRecord | None:
        return await session.get(SatkerRecord, satker)

    if _run(find_satker) is None:
        raise refuse(f"no satker {satker!r} in the database (`alur satker list` shows them)")
    token = issue_token(
        auth, sub=sub, roles=role_ids, satker=satker, name=name, ttl=lifetime, now=datetime.now(UTC)
    )
    typer.echo(token)
