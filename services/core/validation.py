"""What every value from outside must satisfy before it reaches the database.

Both backends refuse some values Python accepts, and the refusal used to surface as a
500: PostgreSQL rejects U+0000 in text and in `jsonb`, SQLite and PostgreSQL integers
stop at 64 bits (plain `int` columns at 32 on PostgreSQL), JSON has no NaN or Infinity,
orjson (which writes every JSON column) refuses nesting deeper than 255 levels, and an
unknown time zone fails only when a deadline is computed. These types and `StrictBody`
refuse such values where they enter, so a client gets a 422 that names the field.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    UrlConstraints,
    model_validator,
)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# Deep enough for any real context document, far below orjson's limit of 255.
MAX_JSON_DEPTH = 32

# A value for a 64-bit column (`BigId`); `int` columns (INTEGER on PostgreSQL) stop at
# INT32_MAX, which their fields bound where they need no tighter bound.
DbBigInt = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]


class _Refused(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []  # innermost first, filled in on the way out


def check_json(value: Any) -> None:
    """Raise `ValueError` naming the place of the first value that is not portable JSON
    data: a string or key holding U+0000 or an unpaired surrogate, an integer beyond 64
    bits, a float that is NaN or infinite, nesting deeper than `MAX_JSON_DEPTH`. Other
    Python values (datetimes, URLs...) pass: they are the typed fields' own business."""
    try:
        _check(value, 0)
    except _Refused as refused:
        where = "".join(reversed(refused.path)).removeprefix(".")
        # The message must be UTF-8 itself: a key's unpaired surrogate is shown escaped.
        where = where.encode(errors="backslashreplace").decode()
        raise ValueError(f"{where}: {refused.reason}" if where else refused.reason) from None


def _check(value: Any, depth: int) -> None:
    # Runs over every value of every request body: the place of a refused value is only
    # worked out when there is one.
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise _Refused("text may not contain U+0000")
        if not value.isascii() and not _is_utf8(value):
            raise _Refused("text may not contain an unpaired surrogate (U+D800-U+DFFF)")
    elif kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Refused("integer out of the 64-bit range")
    elif kind is float:
        if not math.isfinite(value):
            raise _Refused("number must be finite")
    elif kind is dict:
        if depth >= MAX_JSON_DEPTH:
            raise _Refused(f"nested deeper than {MAX_JSON_DEPTH}")
        for key, item in value.items():
            try:
                _check(key, depth + 1)
                _check(item, depth + 1)
            except _Refused as refused:
                refused.path.append(f".{key}")
                raise
    elif kind is list or kind is tuple:
        if depth >= MAX_JSON_DEPTH:
            raise _Refused(f"nested deeper than {MAX_JSON_DEPTH}")
        for index, item in enumerate(value):
            try:
                _check(item, depth + 1)
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise


def _is_utf8(text: str) -> bool:
    # JSON's "\\ud800" escape alone gives Python such a string; UTF-8 (so orjson, and
    # either database) cannot hold it.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class StrictBody(BaseModel):
    """The base of every request body: unknown fields are refused (a client sending
    `"status": "completed"` learns it is not settable instead of being ignored), and so
    is any value `check_json` refuses, anywhere in the body."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _portable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            check_json(data)
        return data


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Jakarta)") from error
    return name


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


# An instant with its offset (a naive time means nothing across satkers), in UTC: every
# column stores UTC, and 0001-01-01T00:00+07:00 has no UTC equivalent.
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]


URL_MAX_LENGTH = 2000


def _fits(url: HttpUrl) -> HttpUrl:
    # Checked once normalised, as stored: "é" in a path becomes "%C3%A9".
    if len(str(url)) > URL_MAX_LENGTH:
        raise ValueError(f"the URL is longer than {URL_MAX_LENGTH} characters once encoded")
    return url


# An http(s) URL that fits the URL columns.
WebUrl = Annotated[HttpUrl, UrlConstraints(max_length=URL_MAX_LENGTH), AfterValidator(_fits)]
