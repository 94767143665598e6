"""Domain errors: one hierarchy with stable codes, mapped to RFC 9457 problems by the API.

The core knows nothing of HTTP beyond the status each error deserves, so the API's single
handler can answer `application/problem+json` with `type`/`title`/`status`/`detail` taken
from here and `extra` as extension members.
"""

from __future__ import annotations

from typing import ClassVar


class AlurError(Exception):
    """Base of every error a client may see; subclasses override the class attributes."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, object] = dict(extra) if extra else {}


class NotFound(AlurError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AlurError):
    code = "conflict"
    status = 409
    title = "Conflict"


class Unavailable(AlurError):
    """A dependency (the database, Redis) cannot be reached now: the same request may
    succeed after `retry_after` seconds."""

    code = "unavailable"
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        # The API's problem handler sends this attribute as response headers.
        self.headers = {"Retry-After": str(retry_after)}
