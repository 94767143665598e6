"""What request bodies may hold: values both databases, orjson and JSON can store."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from services.core.validation import (
    MAX_JSON_DEPTH,
    Instant,
    StrictBody,
    TimeZoneName,
    WebUrl,
    check_json,
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"teks": "biasa", "angka": 2**63 - 1, "negatif": -(2**63), "pecahan": 1.5e300},
        [None, True, False, "", []],
        _nested(MAX_JSON_DEPTH - 1),
    ],
)
def test_portable_json_passes(value: Any) -> None:
    check_json(value)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": {"b": ["x", "y\x00"]}}, "a.b[1]: text may not contain U+0000"),
        ({"kunci\x00": 1}, "text may not contain U+0000"),
        ({"a": ["é", "x\udfff"]}, "a[1]: text may not contain an unpaired surrogate"),
        ({"a": {"k\ud800": 1}}, "a.k\\ud800: text may not contain an unpaired surrogate"),
        ({"n": 2**63}, "n: integer out of the 64-bit range"),
        ({"n": -(2**63) - 1}, "n: integer out of the 64-bit range"),
        ({"n": float("nan")}, "n: number must be finite"),
        ({"n": float("-inf")}, "n: number must be finite"),
        (_nested(MAX_JSON_DEPTH + 1), f"nested deeper than {MAX_JSON_DEPTH}"),
    ],
)
def test_what_the_databases_refuse_is_named_with_its_place(value: Any, where: str) -> None:
    with pytest.raises(ValueError, match=re.escape(where)):
        check_json(value)


class Body(StrictBody):
    title: str
    context: dict[str, Any] = Field(default_factory=dict)


def test_strict_bodies_refuse_unknown_fields_and_unstorable_values() -> None:
    assert Body.model_validate({"title": "x", "context": {"n": 7}}).context == {"n": 7}
    for data in (
        {"title": "x", "status": "completed"},
        {"title": "a\x00"},
        {"title": "x", "context": {"n": 2**64}},
    ):
        with pytest.raises(ValidationError):
            Body.model_validate(data)


def test_time_zones_are_iana_names() -> None:
    zones = TypeAdapter(TimeZoneName)
    assert zones.validate_python("Asia/Makassar") == "Asia/Makassar"
    for name in ("Asia/Atlantis", "", "../etc/passwd", "/etc/localtime", "x" * 65):
        with pytest.raises(ValidationError):
            zones.validate_python(name)


def test_instants_have_an_offset_and_a_utc_equivalent() -> None:
    instants = TypeAdapter(Instant)
    assert instants.validate_python("2026-11-24T09:00:00+07:00").isoformat() == (
        "2026-11-24T02:00:00+00:00"
    )
    for text in ("2026-11-24T09:00:00", "0001-01-01T00:00:00+07:00", "9999-12-31T23:00:00-05:00"):
        with pytest.raises(ValidationError):
            instants.validate_python(text)


def test_urls_fit_their_column_once_encoded() -> None:
    urls = TypeAdapter(WebUrl)
    assert str(urls.validate_python("https://pn-tais.go.id/")) == "https://pn-tais.go.id/"
    # 700 characters typed, 4,200 once percent-encoded.
    with pytest.raises(ValidationError, match="once encoded"):
        urls.validate_python("https://pn-tais.go.id/" + "é" * 700)
    with pytest.raises(ValidationError):
        urls.validate_python("ftp://pn-tais.go.id/")
