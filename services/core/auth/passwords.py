"""Passwords, hashed with Argon2id (argon2-cffi) in a worker thread.

Hashing costs tens of milliseconds of CPU and 64 MiB by design; on the event loop it
would stall every other request of the process, so it runs in a thread. A sign-in for
an unknown username checks the password against a dummy hash all the same, so the time
of the answer does not tell whether the username exists.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.core.settings import AuthSettings

MIN_LENGTH = 10
MAX_LENGTH = 1024
PARALLELISM = 4


def check_policy(password: str) -> str:
    """`ValueError` unless the password is acceptable: 10 to 1024 characters, no NUL."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValueError(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    if "\x00" in password:
        raise ValueError("a password cannot contain the NUL character")
    if not password.strip():
        raise ValueError("a password cannot be only spaces")
    return password


@functools.lru_cache(maxsize=4)
def hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=PARALLELISM)


def _hasher(auth: AuthSettings) -> PasswordHasher:
    return hasher(auth.password_time_cost, auth.password_memory_kib)


@functools.lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return hasher(time_cost, memory_kib).hash("not the password of anybody")


async def hash_password(auth: AuthSettings, password: str) -> str:
    return await asyncio.to_thread(_hasher(auth).hash, check_policy(password))


async def verify_password(auth: AuthSettings, stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: nobody, checked against a dummy)."""
    ph = _hasher(auth)
    target = (
        stored
        if stored is not None
        else await asyncio.to_thread(_dummy_hash, auth.password_time_cost, auth.password_memory_kib)
    )

    def check() -> bool:
        try:
            return ph.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check) and stored is not None


def needs_rehash(auth: AuthSettings, stored: str) -> bool:
    """The hash was made with other parameters than the configured ones."""
    try:
        return _hasher(auth).check_needs_rehash(stored)
    except InvalidHashError:
        return True
