"""Stored secrets (webhook signing secrets, hook-source secrets) are encrypted at rest.

Alur must keep those secrets readable, since it signs and verifies with them, so they
cannot be hashed: they are encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from
`cryptography`) under `ALUR_SECRETS__KEYS`, a comma-separated list of keys, newest first.
The first key encrypts; every key decrypts, so a key is rotated by putting a new one in
front, running `alur secrets reseal` and then dropping the old one.

Outside production, when no key is set, one is created in `<data_dir>/secrets.key` (readable
by its owner only): enough for one machine (embedded mode, tests), refused in production,
where every replica needs the same keys.

A stored value reads `fernet:<token>`. A value without the prefix is an older plaintext
secret: it is still read as it is, and sealed on the next write or by migration 0008.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.core.settings import Settings, get_settings, parse_keys

PREFIX = "fernet:"
KEY_FILE = "secrets.key"


class SecretKeyError(RuntimeError):
    """The configured keys are unusable, or cannot open a stored secret."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def keyring(settings: Settings | None = None) -> MultiFernet:
    settings = settings or get_settings()
    configured = settings.secrets.keys
    text = configured.get_secret_value() if configured is not None else None
    return _keyring(text, str(settings.data_dir.resolve()))


@functools.lru_cache(maxsize=8)
def _keyring(keys: str | None, data_dir: str) -> MultiFernet:
    found = parse_keys(keys) if keys is not None else [_local_key(Path(data_dir))]
    return MultiFernet([Fernet(key) for key in found])


def _local_key(data_dir: Path) -> str:
    """This machine's key, created on first use. Several processes may start at once:
    the key is written to a private temporary file and linked into place, so each one
    reads the same complete key."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(new_key() + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: its key is the one
        finally:
            temporary.unlink()
    return parse_keys(path.read_text())[0]


def seal(plaintext: str, ring: MultiFernet | None = None) -> str:
    """The stored form of a secret (the empty string, a wiped secret, stays empty)."""
    if not plaintext:
        return plaintext
    return PREFIX + (ring or keyring()).encrypt(plaintext.encode()).decode()


def unseal(stored: str, ring: MultiFernet | None = None) -> str:
    if not stored.startswith(PREFIX):
        return stored  # plaintext from before encryption at rest
    try:
        return (ring or keyring()).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "a stored secret cannot be decrypted with ALUR_SECRETS__KEYS: the key that "
            "sealed it is missing (keep old keys after the new one until `alur secrets "
            "reseal` has run)"
        ) from None


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and stored.startswith(PREFIX)  # type: ignore[union-attr]


class SealedString(sa.types.TypeDecorator[str]):
    """A string column whose values are encrypted at rest (see the module docstring)."""

    impl = sa.String(length=255)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else seal(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else unseal(value)
