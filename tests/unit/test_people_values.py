"""What a person's values must look like: NIP, phone numbers, chat ids, usernames,
passwords, and TOTP codes checked against the RFC's own test vectors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from services.core.auth import passwords, totp
from services.core.people.service import (
    check_email,
    check_nip,
    check_telegram_chat_id,
    check_username,
    e164,
)
from tests.people import rfc6238


@pytest.mark.parametrize("nip", ["198703152010121002", "199912312024012001", "196001011985031001"])
def test_valid_nips(nip: str) -> None:
    assert check_nip(nip) == nip


@pytest.mark.parametrize(
    ("nip", "message"),
    [
        ("19870315201012100", "18 digits"),
        ("1987031520101210021", "18 digits"),
        ("19870315201012100a", "18 digits"),
        ("１９８７０３１５２０１０１２１００２", "18 digits"),  # full-width digits
        ("198702302010121002", "birth date"),  # 30 February
        ("198713152010121002", "birth date"),
        ("198703152010131002", "appointment"),  # month 13
        ("198703151980121002", "appointment"),  # appointed before birth
        ("198703152010123002", "1 or 2"),
        ("198703152010121000", "sequence"),
    ],
)
def test_invalid_nips(nip: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_nip(nip)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+6281234567890", "+6281234567890"),
        ("081234567890", "+6281234567890"),
        ("0812-3456-7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("+1 650 253 0000", "+16502530000"),
    ],
)
def test_whatsapp_numbers_become_e164(given: str, stored: str) -> None:
    assert e164(given) == stored


@pytest.mark.parametrize("number", ["12345", "+62", "nomor saya", "+99912345678", ""])
def test_invalid_phone_numbers(number: str) -> None:
    with pytest.raises(ValueError, match="phone number"):
        e164(number)


def test_telegram_chat_ids_are_integers() -> None:
    assert check_telegram_chat_id("-1001234567890") == "-1001234567890"
    for bad in ("@budi", "12.5", "", "1" * 21):
        with pytest.raises(ValueError, match="integer"):
            check_telegram_chat_id(bad)


def test_email_addresses() -> None:
    assert check_email("budi@pn-tais.go.id") == "budi@pn-tais.go.id"
    with pytest.raises(ValueError, match="e-mail"):
        check_email("budi at pn-tais")


@pytest.mark.parametrize("name", ["budi", "budi.santoso", "ptip_2", "a1"])
def test_usernames(name: str) -> None:
    assert check_username(name) == name


@pytest.mark.parametrize("name", ["Budi", "b", "-budi", "budi santoso", "budi@pn", "x" * 65])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(ValueError, match="username"):
        check_username(name)


@pytest.mark.parametrize(
    ("password", "message"),
    [("pendek", "10 to"), ("x" * 1025, "10 to"), ("sandi\x00panjang", "NUL"), (" " * 12, "spaces")],
)
def test_password_policy(password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        passwords.check_policy(password)


# RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" and its 8-digit codes.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924")]


@pytest.mark.parametrize(("seconds", "code"), RFC_VECTORS)
def test_the_test_generator_follows_rfc_6238(seconds: int, code: str) -> None:
    at = datetime.fromtimestamp(seconds, UTC)
    assert rfc6238(RFC_SECRET, at, digits=8) == code


@pytest.mark.parametrize(("seconds", "code"), RFC_VECTORS)
def test_alur_accepts_the_rfc_codes(seconds: int, code: str) -> None:
    at = datetime.fromtimestamp(seconds, UTC)
    # Alur's codes have 6 digits: the last 6 of the RFC's 8.
    assert totp.accepted_step(RFC_SECRET, code[-6:], at, None) == seconds // 30


def test_totp_allows_one_step_of_drift_and_each_code_once() -> None:
    secret = totp.new_secret()
    now = datetime(2026, 12, 3, 2, 0, 10, tzinfo=UTC)
    step = int(now.timestamp()) // 30
    previous = rfc6238(secret, now - timedelta(seconds=30))
    assert totp.accepted_step(secret, previous, now, None) == step - 1
    # Used once: that step and the ones before it are spent.
    assert totp.accepted_step(secret, previous, now, step - 1) is None
    current = rfc6238(secret, now)
    assert totp.accepted_step(secret, current, now, step - 1) == step
    assert totp.accepted_step(secret, current, now, step) is None
    stale = rfc6238(secret, now - timedelta(seconds=90))
    assert totp.accepted_step(secret, stale, now, None) is None


def test_provisioning_uri_names_alur_and_the_person() -> None:
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "budi")
    assert uri.startswith(f"otpauth://totp/Alur:budi?secret={secret}")
    assert "issuer=Alur" in uri
