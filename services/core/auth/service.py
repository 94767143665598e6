"""Signing in with a password (and a TOTP code), refreshing, logging out.

The access tokens Alur issues are short-lived ES256 JWTs carrying the person's record
as it is when they are minted (at sign-in and at each refresh): `sub` (the username),
`name`, `satker`, `roles`, and `acting` — the acting assignments not yet over, for other
services to read; Alur itself checks acting periods at request time
(`services.core.people.acting`). A change to a person's roles reaches their tokens at the
next refresh, within one access-token lifetime. The refresh token is opaque and
revocable (`services.core.auth.refresh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.auth import passwords, refresh, totp
from services.core.auth.keys import KeyRing
from services.core.auth.lockout import Lockout
from services.core.errors import AlurError, Conflict
from services.core.identity.tokens import OWN_ALGORITHM, issue_token
from services.core.people import acting
from services.core.people.models import PersonRecord
from services.core.people.service import USERNAME
from services.core.settings import AuthSettings

log = structlog.get_logger(__name__)


class InvalidGrant(AlurError):
    """RFC 6749 §5.2 `invalid_grant`, as a problem document with the `error` member
    OAuth2 clients look for."""

    code = "invalid_grant"
    status = 400
    title = "The credentials were not accepted"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, extra={"error": "invalid_grant"})


class TotpRequired(InvalidGrant):
    code = "totp_required"
    title = "A TOTP code is required"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


@dataclass(frozen=True)
class SignInContext:
    """What every sign-in use case needs from the process."""

    auth: AuthSettings
    keys: KeyRing
    lockout: Lockout


async def sign_in(
    session: AsyncSession,
    ctx: SignInContext,
    *,
    username: str,
    password: str,
    totp_code: str | None,
    address: str,
    now: datetime,
) -> Tokens:
    """The password grant. Every outcome is logged with the username and the client
    address, never the password or the code."""
    username = username.strip().lower()
    try:
        await ctx.lockout.check(username, address)
    except AlurError as exc:
        log.warning("sign-in refused", username=username, client=address, reason=exc.code)
        raise
    # A name no username can have is nobody's (and is not sent to the database).
    known = USERNAME.match(username) is not None
    person = await session.get(PersonRecord, username) if known else None
    stored = person.password_hash if person is not None and person.active else None
    if not await passwords.verify_password(ctx.auth, stored, password):
        await ctx.lockout.failed(username, address)
        reason = (
            "unknown_username"
            if person is None
            else "inactive"
            if not person.active
            else "no_password"
            if person.password_hash is None
            else "wrong_password"
        )
        log.warning("sign-in failed", username=username, client=address, reason=reason)
        raise InvalidGrant("Wrong username or password")
    assert person is not None
    assert stored is not None
    if person.totp_enabled and person.totp_secret:
        if not totp_code:
            log.info("sign-in needs a TOTP code", username=username, client=address)
            raise TotpRequired("This account needs a TOTP code (form field `totp`)")
        step = totp.accepted_step(person.totp_secret, totp_code, now, person.totp_last_step)
        if step is None:
            await ctx.lockout.failed(username, address)
            log.warning("sign-in failed", username=username, client=address, reason="wrong_totp")
            raise InvalidGrant("The TOTP code is wrong, expired or already used")
        person.totp_last_step = step
    await ctx.lockout.succeeded(username)
    if passwords.needs_rehash(ctx.auth, stored):
        person.password_hash = await passwords.hash_password(ctx.auth, password)
    tokens = await _issue(session, ctx, person, now, family_id=None)
    log.info("sign-in", username=username, client=address)
    return tokens


async def refresh_tokens(
    session: AsyncSession, ctx: SignInContext, token: str, *, address: str, now: datetime
) -> Tokens | refresh.Refused:
    """New tokens for a refresh token, which is spent. A refusal may have revoked the
    token's family: the caller commits before answering it."""
    used = await refresh.use(session, token, now)
    if isinstance(used, refresh.Refused):
        log.warning("refresh refused", client=address, reason=used.reason)
        return used
    person = await session.get(PersonRecord, used.username)
    if person is None or not person.active:
        await refresh.revoke_family(session, used.family_id, now)
        log.warning("refresh refused", username=used.username, client=address, reason="inactive")
        return refresh.Refused("inactive")
    tokens = await _issue(session, ctx, person, now, family_id=used.family_id)
    log.info("token refreshed", username=person.username, client=address)
    return tokens


async def logout(session: AsyncSession, token: str, *, address: str, now: datetime) -> None:
    if await refresh.revoke_token(session, token, now):
        log.info("logout", client=address)


async def access_token(
    session: AsyncSession, ctx: SignInContext, person: PersonRecord, now: datetime
) -> str:
    kid, pem = await ctx.keys.signing_key()
    assignments = await acting.of_person(session, person.username, current_after=now)
    claims: dict[str, Any] = {
        "acting": [
            {
                "role": record.role,
                "satker": record.satker_id,
                "kind": record.kind,
                "holder": record.holder,
                "from": record.starts_at.isoformat(),
                "to": record.ends_at.isoformat(),
            }
            for record in assignments
        ]
    }
    return issue_token(
        ctx.auth,
        sub=person.username,
        roles=person.roles,
        satker=person.satker_id,
        name=person.name,
        ttl=timedelta(minutes=ctx.auth.access_token_minutes),
        now=now,
        private_key_pem=pem,
        algorithm=OWN_ALGORITHM,
        kid=kid,
        extra_claims=claims,
    )


async def _issue(
    session: AsyncSession,
    ctx: SignInContext,
    person: PersonRecord,
    now: datetime,
    *,
    family_id: str | None,
) -> Tokens:
    lifetime = timedelta(days=ctx.auth.refresh_token_days)
    return Tokens(
        access_token=await access_token(session, ctx, person, now),
        expires_in=ctx.auth.access_token_minutes * 60,
        refresh_token=await refresh.issue(
            session, person.username, lifetime=lifetime, now=now, family_id=family_id
        ),
        refresh_expires_in=int(lifetime.total_seconds()),
    )


# --- a person's own credentials ------------------------------------------------------


class WrongPassword(AlurError):
    code = "wrong_password"
    status = 403
    title = "The password is wrong"


class TotpAlreadyEnabled(Conflict):
    code = "totp_already_enabled"
    title = "TOTP is already enabled"


class TotpNotStarted(Conflict):
    code = "totp_not_started"
    title = "No TOTP enrolment to confirm"


class InvalidTotp(AlurError):
    code = "invalid_totp"
    status = 422
    title = "The TOTP code is not valid"


async def check_password(
    ctx: SignInContext, person: PersonRecord, password: str, *, address: str
) -> None:
    """Re-authentication before a change to one's own credentials; a wrong password
    counts as a failed sign-in (a stolen access token must not become a free guesser)."""
    await ctx.lockout.check(person.username, address)
    if not await passwords.verify_password(ctx.auth, person.password_hash, password):
        await ctx.lockout.failed(person.username, address)
        log.warning("password check failed", username=person.username, client=address)
        raise WrongPassword("The current password is wrong")


async def begin_totp(session: AsyncSession, person: PersonRecord, now: datetime) -> str:
    """A new TOTP secret for the person, in force once confirmed with a code."""
    if person.totp_enabled:
        raise TotpAlreadyEnabled("TOTP is enabled: an admin must disable it first")
    person.totp_secret = totp.new_secret()
    person.totp_last_step = None
    person.updated_at = now
    await session.flush()
    return person.totp_secret


async def confirm_totp(
    session: AsyncSession, person: PersonRecord, code: str, now: datetime
) -> None:
    if person.totp_enabled or not person.totp_secret:
        raise TotpNotStarted("Start the enrolment first (POST .../totp)")
    step = totp.accepted_step(person.totp_secret, code, now, person.totp_last_step)
    if step is None:
        raise InvalidTotp("The code does not match: check the authenticator's clock")
    person.totp_enabled = True
    person.totp_last_step = step
    person.updated_at = now
    await session.flush()
    log.info("totp enabled", username=person.username)


async def disable_totp(session: AsyncSession, person: PersonRecord, now: datetime) -> None:
    person.totp_enabled = False
    person.totp_secret = None
    person.totp_last_step = None
    person.updated_at = now
    await session.flush()
    log.info("totp disabled", username=person.username)
