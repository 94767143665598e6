"""`alur secrets`: keys for the secrets stored encrypted (see `services.core.secrets`)."""

from __future__ import annotations

import asyncio

import typer
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import select

from services.core.auth.models import SigningKeyRecord
from services.core.db import create_engine, session_factory, unit_of_work
from services.core.people.models import PersonRecord
from services.core.secrets import new_key
from services.core.settings import get_settings
from services.core.webhooks_in.models import HookSourceRecord
from services.core.webhooks_out.models import WebhookSubscriptionRecord

secrets_app = typer.Typer(
    help="Keys of the secrets stored encrypted (webhooks, hook sources, signing keys, TOTP).",
    no_args_is_help=True,
)


@secrets_app.command("new-key")
def make_key() -> None:
    """Print a new key for ALUR_SECRETS__KEYS (put it first; keep the old ones after it)."""
    typer.echo(new_key())


@secrets_app.command("reseal")
def reseal() -> None:
    """Encrypt every stored secret again with the first key of ALUR_SECRETS__KEYS; the
    keys after it are then no longer needed."""

    async def main() -> tuple[int, int]:
        engine = create_engine(get_settings())
        count = others = 0
        try:
            async with unit_of_work(session_factory(engine)) as session:
                for record in (await session.scalars(select(WebhookSubscriptionRecord))).all():
                    flag_modified(record, "secret")
                    if record.previous_secret is not None:
                        flag_modified(record, "previous_secret")
                    count += 1
                for source in (await session.scalars(select(HookSourceRecord))).all():
                    flag_modified(source, "secret")
                    count += 1
                for key in (await session.scalars(select(SigningKeyRecord))).all():
                    flag_modified(key, "private_key")
                    others += 1
                for person in (await session.scalars(select(PersonRecord))).all():
                    if person.totp_secret is not None:
                        flag_modified(person, "totp_secret")
                        others += 1
        finally:
            await engine.dispose()
        return count, others

    count, others = asyncio.run(main())
    typer.echo(
        f"resealed the secrets of {count} subscription(s) and source(s), and {others} "
        "signing key(s) and TOTP secret(s)"
    )
