"""Alur's token signing keys: ES256, kept in the database with the private half sealed
(`services.core.secrets`), rotated with `alur keys rotate`.

The newest key not superseded signs. A superseded key still verifies, and is still
published at `/.well-known/jwks.json`, for as long as a token it signed can be valid:
the access-token lifetime, the clock leeway, and the time a replica may keep signing
with its cached copy after a rotation made elsewhere (`KEY_CACHE_SECONDS`). After that
the next rotation retires it and wipes its private half.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from services.core.auth.models import SigningKeyRecord
from services.core.db import unit_of_work, utcnow
from services.core.identity.tokens import OWN_ALGORITHM, PublicKey, public_key_from_jwk
from services.core.settings import AuthSettings

log = structlog.get_logger(__name__)

# How long a process keeps its copy of the keys before reading them again.
KEY_CACHE_SECONDS = 30.0
# A token naming a kid this process does not know makes it read the keys again, at
# most this often.
UNKNOWN_KID_INTERVAL_SECONDS = 1.0


def verify_window(auth: AuthSettings) -> timedelta:
    """How long after being superseded a key may still have signed a valid token."""
    return timedelta(
        minutes=auth.access_token_minutes, seconds=auth.leeway_seconds + KEY_CACHE_SECONDS
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key(now: datetime) -> SigningKeyRecord:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_numbers()
    kid = f"alur-{now:%Y%m%d}-{secrets.token_hex(4)}"
    return SigningKeyRecord(
        kid=kid,
        algorithm=OWN_ALGORITHM,
        private_key=_b64(private.private_numbers().private_value.to_bytes(32, "big")),
        public_jwk={
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(public.x.to_bytes(32, "big")),
            "y": _b64(public.y.to_bytes(32, "big")),
            "alg": OWN_ALGORITHM,
            "use": "sig",
            "kid": kid,
        },
        created_at=now,
    )


def private_pem(record: SigningKeyRecord) -> str:
    scalar = int.from_bytes(_unb64(record.private_key), "big")
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def live_keys(
    session: AsyncSession, auth: AuthSettings, now: datetime
) -> list[SigningKeyRecord]:
    """The keys that verify at `now`, newest first: the first one not superseded signs."""
    records = (
        await session.scalars(
            select(SigningKeyRecord)
            .where(col(SigningKeyRecord.retired_at).is_(None))
            .order_by(col(SigningKeyRecord.created_at).desc(), col(SigningKeyRecord.kid))
        )
    ).all()
    oldest = now - verify_window(auth)
    return [r for r in records if r.superseded_at is None or r.superseded_at > oldest]


async def ensure_key(session: AsyncSession, auth: AuthSettings, now: datetime) -> SigningKeyRecord:
    """The signing key, made if there is none (the first start)."""
    for record in await live_keys(session, auth, now):
        if record.superseded_at is None:
            return record
    record = new_key(now)
    session.add(record)
    await session.flush()
    log.info("signing key created", kid=record.kid)
    return record


@dataclass(frozen=True)
class Rotation:
    current: str
    superseded: list[str]
    retired: list[str]


async def rotate(session: AsyncSession, auth: AuthSettings, now: datetime) -> Rotation:
    """A new signing key. The ones it supersedes keep verifying their tokens; those
    whose last token has expired are retired and their private half wiped."""
    fresh = new_key(now)
    superseded, retired = [], []
    oldest = now - verify_window(auth)
    records = (
        await session.scalars(
            select(SigningKeyRecord).where(col(SigningKeyRecord.retired_at).is_(None))
        )
    ).all()
    for record in records:
        if record.superseded_at is None:
            record.superseded_at = now
            superseded.append(record.kid)
        elif record.superseded_at <= oldest:
            record.retired_at = now
            record.private_key = ""
            retired.append(record.kid)
    session.add(fresh)
    await session.flush()
    log.info("signing key rotated", kid=fresh.kid, superseded=superseded, retired=retired)
    return Rotation(fresh.kid, superseded, retired)


@dataclass(frozen=True)
class _Loaded:
    signing_kid: str | None
    signing_pem: str | None
    public: tuple[PublicKey, ...]
    jwks: tuple[dict[str, Any], ...]


class KeyRing:
    """This process's copy of the keys: the current private key signs, the live public
    keys verify (a `KeySource` of the token verifier) and are published. Read again
    every `KEY_CACHE_SECONDS`, or sooner when a token names an unknown kid, so a
    rotation on any replica (or by `alur keys rotate`) reaches every replica in bounded
    time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        auth: AuthSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._auth = auth
        self._clock = clock
        self._loaded = _Loaded(None, None, (), ())
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    def public_keys(self) -> Sequence[PublicKey]:
        return self._loaded.public

    def stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= KEY_CACHE_SECONDS

    async def refresh(self, *, unknown_kid: bool = False) -> None:
        async with self._lock:
            now = self._clock()
            recent = (
                self._attempted_at is not None
                and now - self._attempted_at < UNKNOWN_KID_INTERVAL_SECONDS
            )
            if recent or not (unknown_kid or self.stale()):
                return
            try:
                await self._load()
            except (SQLAlchemyError, OSError) as exc:
                if self._loaded_at is None:
                    raise
                # Keep verifying with the keys known: a database that is down must not
                # also sign everybody out. Tried again after UNKNOWN_KID_INTERVAL_SECONDS.
                log.warning("signing keys not reloaded", error=f"{type(exc).__name__}: {exc}")

    async def _load(self) -> None:
        self._attempted_at = self._clock()
        async with unit_of_work(self._sessions, read_only=True) as session:
            records = await live_keys(session, self._auth, utcnow())
        signing = next((r for r in records if r.superseded_at is None), None)
        self._loaded = _Loaded(
            signing_kid=signing.kid if signing else None,
            signing_pem=private_pem(signing) if signing else None,
            public=tuple(public_key_from_jwk(r.public_jwk) for r in records),
            jwks=tuple(r.public_jwk for r in records),
        )
        self._loaded_at = self._clock()

    async def signing_key(self) -> tuple[str, str]:
        """(kid, private key PEM) of the key that signs now."""
        if self.stale():
            await self.refresh()
        if self._loaded.signing_kid is None or self._loaded.signing_pem is None:
            # Made at start-up; a database restored without keys gets one here.
            async with self._lock:
                async with unit_of_work(self._sessions) as session:
                    await ensure_key(session, self._auth, utcnow())
                await self._load()
        kid, pem = self._loaded.signing_kid, self._loaded.signing_pem
        if kid is None or pem is None:
            raise RuntimeError("no signing key could be loaded")
        return kid, pem

    async def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The JWKS document of the live keys."""
        if self.stale():
            await self.refresh()
        return {"keys": [dict(entry) for entry in self._loaded.jwks]}
