"""Failed sign-ins counted per username and per client address, in Redis (shared by
every API replica).

Each failure bumps both counters and restarts their expiry; once a counter reaches its
threshold, sign-ins for that username (or from that address) are refused without
looking at the password until `lockout_seconds` after the last failure. A success
clears the username's counter, not the address's: one good password does not excuse a
thousand guesses from the same place.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.core.errors import AlurError
from services.core.settings import AuthSettings

PREFIX = "alur:signin"


class TooManyAttempts(AlurError):
    code = "too_many_requests"
    status = 429
    title = "Too many failed sign-ins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-ins: try again in {retry_after} s",
            extra={"retry_after": retry_after},
        )
        self.headers = {"Retry-After": str(retry_after)}


class SignInUnavailable(AlurError):
    code = "signin_unavailable"
    status = 503
    title = "Sign-in is unavailable"


class Lockout:
    def __init__(self, redis: Redis, auth: AuthSettings) -> None:
        self._redis = redis
        self._auth = auth

    def _keys(self, username: str, address: str) -> tuple[str, str]:
        return f"{PREFIX}:user:{username}", f"{PREFIX}:addr:{address}"

    async def check(self, username: str, address: str) -> None:
        """`TooManyAttempts` (with the seconds to wait) while either is locked."""
        user_key, address_key = self._keys(username, address)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in (user_key, address_key):
                    pipe.get(key)
                    pipe.ttl(key)
                user, user_ttl, address_count, address_ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SignInUnavailable(
                "Sign-in cannot count failed attempts right now (Redis); try again shortly"
            ) from exc
        waits = []
        if user is not None and int(user) >= self._auth.lockout_username_failures:
            waits.append(user_ttl)
        if address_count is not None and int(address_count) >= self._auth.lockout_address_failures:
            waits.append(address_ttl)
        if waits:
            raise TooManyAttempts(max(1, *(int(wait) for wait in waits)))

    async def failed(self, username: str, address: str) -> None:
        seconds = self._auth.lockout_seconds
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in self._keys(username, address):
                    pipe.incr(key)
                    pipe.expire(key, seconds)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SignInUnavailable("Sign-in cannot count failed attempts right now") from exc

    async def succeeded(self, username: str) -> None:
        try:
            await self._redis.delete(self._keys(username, "")[0])
        except (RedisError, OSError) as exc:
            raise SignInUnavailable("Sign-in cannot count failed attempts right now") from exc
