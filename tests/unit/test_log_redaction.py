"""The last guard of the log output: what is shaped like a secret is masked."""

from __future__ import annotations

import pytest

from services.core.logging import redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJidWRpIn0."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"token={JWT} rest", "token=[redacted] rest"),
        # A JWT cut short (as a log truncating long values shows it) is masked too.
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3Mi…", "[redacted]…"),
        ("Authorization: Bearer abc.def-123, next", "Authorization: Bearer [redacted], next"),
        ("authorization='bearer s3cr3t'", "authorization='bearer [redacted]'"),
        ('{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}', '{"secret": "whsec_[redacted]"}'),
        ("mysql://sipp:p4ss@db:3306/sipp", "mysql://sipp:[redacted]@db:3306/sipp"),
        ("redis://:hunter2@redis:6379/0", "redis://:[redacted]@redis:6379/0"),
    ],
)
def test_secrets_are_masked(line: str, expected: str) -> None:
    assert redact(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "request method=GET route=/v1/tasks status=401 duration_ms=3.1",
        "http://127.0.0.1:8000/v1/instances?state=active",
        "code=token_expired detail='The token has expired'",
        "mysql://sipp@db:3306/sipp",
        "Traceback (most recent call last):",
    ],
)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert redact(line) == line
