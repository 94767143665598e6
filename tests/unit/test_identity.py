"""Bearer tokens: what is accepted, what is refused, and what a client is told."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt
from pydantic import SecretStr
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.token import parse_ttl
from services.core.identity.tokens import (
    Principal,
    TokenExpired,
    TokenMissing,
    TokenVerifier,
    Unauthorized,
    issue_token,
    jwks_from_public_pems,
)
from services.core.settings import AuthSettings, get_settings

SECRET = "identity-test-secret-0123456789abcdef"
NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _private_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key_2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def stranger_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks_file(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_2: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> Path:
    path = tmp_path / "jwks.json"
    pems = {"rsa-1": _public_pem(rsa_key), "rsa-2": _public_pem(rsa_key_2)}
    pems["ec-1"] = _public_pem(ec_key)
    path.write_text(json.dumps(jwks_from_public_pems(pems)))
    return path


def _auth(*algorithms: str, jwks: Path | None = None, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "jwt_secret": SecretStr(SECRET),
        "algorithms": list(algorithms) or ["HS256"],
        "issuer": "alur",
        "audience": "alur-api",
        "leeway_seconds": 30,
        "jwks_file": jwks,
        **overrides,
    }
    return AuthSettings(**values)


@pytest.fixture
def verifier(jwks_file: Path) -> TokenVerifier:
    return TokenVerifier(_auth("HS256", "RS256", "ES256", jwks=jwks_file))


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "alur",
        "aud": "alur-api",
        "sub": "u-17",
        "name": "Budi Santoso",
        "roles": ["staf_ti", "kasubbag_ptip"],
        "satker": "pn-tais",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + HOUR).timestamp()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not ...}


def _hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _refusal(verifier: TokenVerifier, token: str, **kwargs: Any) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token, now=NOW, **kwargs)
    return caught.value


# --- accepted tokens ----------------------------------------------------------------------


def test_hs256_token_becomes_a_principal(verifier: TokenVerifier) -> None:
    principal = verifier.verify(_hs256(_claims()), now=NOW)
    assert principal == Principal(
        sub="u-17",
        name="Budi Santoso",
        roles=frozenset({"staf_ti", "kasubbag_ptip"}),
        satker="pn-tais",
    )


def test_name_is_optional_and_aud_may_be_a_list(verifier: TokenVerifier) -> None:
    token = _hs256(_claims(name=..., aud=["other-api", "alur-api"]))
    principal = verifier.verify(token, now=NOW)
    assert principal.name is None
    assert principal.sub == "u-17"


def test_rs256_key_is_chosen_by_kid(verifier: TokenVerifier, rsa_key_2: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(
        _claims(), _private_pem(rsa_key_2), algorithm="RS256", headers={"kid": "rsa-2"}
    )
    assert verifier.verify(token, now=NOW).satker == "pn-tais"

    mislabelled = jwt.encode(
        _claims(), _private_pem(rsa_key_2), algorithm="RS256", headers={"kid": "rsa-1"}
    )
    assert "signature" in _refusal(verifier, mislabelled).detail


def test_rs256_without_kid_tries_every_rsa_key(
    verifier: TokenVerifier, rsa_key_2: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(_claims(), _private_pem(rsa_key_2), algorithm="RS256")
    assert verifier.verify(token, now=NOW).sub == "u-17"


def test_es256_token_verifies(verifier: TokenVerifier, ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = issue_token(
        _auth(),
        sub="ops",
        roles=["staf_ti"],
        satker="pn-tais",
        ttl=HOUR,
        now=NOW,
        private_key_pem=_private_pem(ec_key),
        algorithm="ES256",
        kid="ec-1",
    )
    assert verifier.verify(token, now=NOW) == Principal(
        "ops", None, frozenset({"staf_ti"}), "pn-tais"
    )


def test_unknown_kid_is_refused(verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(_claims(), _private_pem(rsa_key), algorithm="RS256", headers={"kid": "ec-1"})
    assert _refusal(verifier, token).detail == "No RS256 key with kid 'ec-1' is configured"


# --- refused tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "   "])
def test_no_token_asks_for_one(verifier: TokenVerifier, token: str) -> None:
    refusal = _refusal(verifier, token)
    assert isinstance(refusal, TokenMissing)
    assert (refusal.code, refusal.status) == ("token_missing", 401)
    assert refusal.headers == {"WWW-Authenticate": 'Bearer realm="alur"'}


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "a.b.c",
        f"{_segment({'alg': 'HS256'})}.!!!.abc",
        f"{_b64(b'[1, 2]')}.{_segment({'sub': 'x'})}.sig",
        f"{_segment({'typ': 'JWT'})}.{_segment({'sub': 'x'})}.sig",
    ],
)
def test_malformed_tokens_are_invalid(verifier: TokenVerifier, token: str) -> None:
    refusal = _refusal(verifier, token)
    assert type(refusal) is Unauthorized
    assert (refusal.code, refusal.status) == ("invalid_token", 401)


def test_payload_must_be_a_json_object(verifier: TokenVerifier) -> None:
    header = _segment({"alg": "HS256", "typ": "JWT"})
    payload = _b64(b'["sub"]')
    signature = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    token = f"{header}.{payload}.{_b64(signature.digest())}"
    assert _refusal(verifier, token).detail == "The token payload is not a JSON object"


def test_expired_token(verifier: TokenVerifier) -> None:
    token = _hs256(_claims(exp=int((NOW - timedelta(seconds=31)).timestamp())))
    refusal = _refusal(verifier, token)
    assert isinstance(refusal, TokenExpired)
    assert refusal.code == "token_expired"
    assert "expired" in refusal.detail


def test_expiry_within_the_leeway_is_accepted(verifier: TokenVerifier) -> None:
    token = _hs256(_claims(exp=int((NOW - timedelta(seconds=29)).timestamp())))
    assert verifier.verify(token, now=NOW).sub == "u-17"


def test_the_clock_defaults_to_now(verifier: TokenVerifier) -> None:
    # Built around NOW (in the past), the token must fail against the real clock.
    with pytest.raises(TokenExpired):
        verifier.verify(_hs256(_claims()))


def test_token_not_valid_yet(verifier: TokenVerifier) -> None:
    token = _hs256(_claims(nbf=int((NOW + timedelta(minutes=5)).timestamp())))
    assert "not valid yet" in _refusal(verifier, token).detail
    within_leeway = _hs256(_claims(nbf=int((NOW + timedelta(seconds=20)).timestamp())))
    assert verifier.verify(within_leeway, now=NOW).sub == "u-17"


def test_wrong_audience(verifier: TokenVerifier) -> None:
    refusal = _refusal(verifier, _hs256(_claims(aud="billing-api")))
    assert refusal.detail == "Wrong audience: the token's aud is 'billing-api', expected 'alur-api'"


def test_wrong_issuer(verifier: TokenVerifier) -> None:
    token = issue_token(
        _auth(issuer="someone-else"),
        sub="u",
        roles=["staf_ti"],
        satker="pn-tais",
        ttl=HOUR,
        now=NOW,
    )
    refusal = _refusal(verifier, token)
    assert refusal.detail == "Wrong issuer: the token's iss is 'someone-else', expected 'alur'"


def test_wrong_hs256_secret(verifier: TokenVerifier) -> None:
    token = _hs256(_claims(), secret="another-secret-0123456789abcdef0123")
    refusal = _refusal(verifier, token)
    assert refusal.detail == "The token signature is not valid"
    assert SECRET not in refusal.detail
    assert SECRET not in refusal.headers["WWW-Authenticate"]


@pytest.mark.parametrize("kid", ["rsa-1", None])
def test_rs256_signed_by_an_unknown_key(
    verifier: TokenVerifier, stranger_rsa_key: rsa.RSAPrivateKey, kid: str | None
) -> None:
    headers = {"kid": kid} if kid else None
    token = jwt.encode(
        _claims(), _private_pem(stranger_rsa_key), algorithm="RS256", headers=headers
    )
    assert _refusal(verifier, token).detail == "The token signature is not valid"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_unsigned_tokens_are_refused(verifier: TokenVerifier, alg: str) -> None:
    token = f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(_claims())}."
    assert _refusal(verifier, token).detail == "Unsigned tokens (alg 'none') are not accepted"


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    tmp_path: Path, jwks_file: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The HS/RS confusion attack: the public key, known to all, used as an HMAC secret."""
    verifier = TokenVerifier(_auth("HS256", "RS256", jwks=jwks_file))
    public_pem = _public_pem(rsa_key)
    for kid in ("rsa-1", None):
        header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
        if kid:
            header["kid"] = kid
        signing_input = f"{_segment(header)}.{_segment(_claims())}"
        mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(mac)}"
        assert _refusal(verifier, token).detail == "The token signature is not valid"


def test_algorithm_outside_the_allow_list(rsa_key: rsa.RSAPrivateKey, jwks_file: Path) -> None:
    hs_only = TokenVerifier(_auth("HS256", jwks=jwks_file))
    token = jwt.encode(
        _claims(), _private_pem(rsa_key), algorithm="RS256", headers={"kid": "rsa-1"}
    )
    assert _refusal(hs_only, token).detail == "Algorithm 'RS256' is not allowed (allowed: HS256)"

    hs512 = jwt.encode(_claims(), SECRET, algorithm="HS512")
    assert "'HS512' is not allowed" in _refusal(hs_only, hs512).detail


@pytest.mark.parametrize("claim", ["sub", "roles", "satker", "exp", "iss", "aud"])
def test_missing_required_claim(verifier: TokenVerifier, claim: str) -> None:
    refusal = _refusal(verifier, _hs256(_claims(**{claim: ...})))
    assert refusal.detail == f"The token is missing the claim '{claim}'"
    assert f"missing the claim '{claim}'" in refusal.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("claim", "value", "message"),
    [
        ("roles", "staf_ti", "Claim 'roles' must be a list of role ids (strings)"),
        ("roles", ["staf_ti", 7], "Claim 'roles' must be a list of role ids (strings)"),
        ("roles", [""], "Claim 'roles' must be a list of role ids (strings)"),
        ("roles", {"staf_ti": True}, "Claim 'roles' must be a list of role ids (strings)"),
        ("satker", 12, "Claim 'satker' must be a non-empty string"),
        ("sub", "", "Claim 'sub' must be a non-empty string"),
        ("name", ["Budi"], "Claim 'name' must be a string"),
        ("exp", "tomorrow", "Claim 'exp' must be a number of seconds since the epoch"),
        ("exp", True, "Claim 'exp' must be a number of seconds since the epoch"),
        # Beyond any float: float() raises OverflowError, once a 500.
        ("exp", 10**400, "Claim 'exp' must be a number of seconds since the epoch"),
        ("nbf", -(10**400), "Claim 'nbf' must be a number of seconds since the epoch"),
        ("iat", 10**309, "Claim 'iat' must be a number of seconds since the epoch"),
        # Longer than the database keeps (once a 500 on PostgreSQL), or NUL (refused there).
        ("sub", "x" * 201, "Claim 'sub' must be at most 200 characters, without U+0000"),
        ("sub", "budi\x00", "Claim 'sub' must be at most 200 characters, without U+0000"),
        ("name", "B" * 201, "Claim 'name' must be at most 200 characters, without U+0000"),
        ("satker", "p" * 65, "Claim 'satker' must be at most 64 characters, without U+0000"),
        ("roles", ["r" * 65], "Claim 'roles' must be at most 64 characters, without U+0000"),
    ],
)
def test_claims_of_the_wrong_type(
    verifier: TokenVerifier, claim: str, value: object, message: str
) -> None:
    assert _refusal(verifier, _hs256(_claims(**{claim: value}))).detail == message


def test_empty_role_list_is_a_principal_without_roles(verifier: TokenVerifier) -> None:
    assert verifier.verify(_hs256(_claims(roles=[])), now=NOW).roles == frozenset()


def test_naive_now_is_a_programming_error(verifier: TokenVerifier) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verifier.verify(_hs256(_claims()), now=datetime(2025, 3, 4, 9, 30))


# --- the challenge a client receives ------------------------------------------------------


def test_www_authenticate_follows_rfc_6750(verifier: TokenVerifier) -> None:
    expired = _refusal(verifier, _hs256(_claims(exp=int((NOW - HOUR).timestamp()))))
    assert expired.headers == {
        "WWW-Authenticate": 'Bearer realm="alur", error="invalid_token", '
        'error_description="The token has expired; obtain a new one"'
    }


def test_challenge_quotes_nothing_the_client_sent(verifier: TokenVerifier) -> None:
    header = _segment({"alg": 'HS"999\\é'})
    token = f"{header}.{_segment(_claims())}.sig"
    challenge = _refusal(verifier, token).headers["WWW-Authenticate"]
    description = challenge.split('error_description="', 1)[1]
    assert description.endswith('"')
    assert '"' not in description[:-1]
    assert "\\" not in description
    assert description.isascii()


# --- configuration ------------------------------------------------------------------------


def test_asymmetric_algorithms_need_a_jwks_file() -> None:
    with pytest.raises(ValueError, match="ALUR_AUTH__JWKS_FILE is not set"):
        TokenVerifier(_auth("HS256", "RS256"))


def test_unreadable_jwks_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        TokenVerifier(_auth("RS256", jwks=tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        TokenVerifier(_auth("RS256", jwks=broken))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kty": "oct", "k": "c2VjcmV0"}, "symmetric key"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}, "private key"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AA"}, "not supported"),
        ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "curve P-256"),
    ],
)
def test_jwks_file_with_unusable_keys(tmp_path: Path, entry: dict[str, str], message: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [entry]}))
    with pytest.raises(ValueError, match=message):
        TokenVerifier(_auth("RS256", jwks=path))


def test_allowed_algorithm_without_a_matching_key(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks_from_public_pems({"rsa-1": _public_pem(rsa_key)})))
    with pytest.raises(ValueError, match=r"ES256 is allowed but .* has no EC key"):
        TokenVerifier(_auth("RS256", "ES256", jwks=path))


def test_unsupported_algorithm_in_settings() -> None:
    with pytest.raises(ValueError, match="unsupported JWT algorithm"):
        TokenVerifier(_auth("HS256", "PS256"))


def test_jwks_from_private_pem_is_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="not a PEM public key"):
        jwks_from_public_pems({"k": _private_pem(rsa_key)})


# --- issuing ------------------------------------------------------------------------------


def test_issue_token_round_trip(verifier: TokenVerifier) -> None:
    token = issue_token(
        _auth(),
        sub="u-9",
        roles=["sekretaris", "ketua", "ketua"],
        satker="pt-bengkulu",
        name="Siti",
        ttl=timedelta(minutes=30),
        now=NOW,
    )
    claims = jwt.get_unverified_claims(token)
    assert claims["exp"] - claims["iat"] == 1800
    assert (claims["iss"], claims["aud"]) == ("alur", "alur-api")
    assert verifier.verify(token, now=NOW + timedelta(minutes=29)) == Principal(
        "u-9", "Siti", frozenset({"sekretaris", "ketua"}), "pt-bengkulu"
    )
    with pytest.raises(TokenExpired):
        verifier.verify(token, now=NOW + timedelta(minutes=31))


def test_issue_rs256_with_a_private_key(
    verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = issue_token(
        _auth(),
        sub="u",
        roles=["staf_ti"],
        satker="pn-tais",
        ttl=HOUR,
        now=NOW,
        private_key_pem=_private_pem(rsa_key),
        algorithm="RS256",
        kid="rsa-1",
    )
    assert jwt.get_unverified_header(token)["kid"] == "rsa-1"
    assert verifier.verify(token, now=NOW).roles == {"staf_ti"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithm": "RS256"}, "need private_key_pem"),
        ({"algorithm": "HS512"}, "cannot issue"),
        ({"private_key_pem": "-----BEGIN PRIVATE KEY-----"}, "configured secret"),
        ({"ttl": timedelta(0)}, "ttl must be positive"),
    ],
)
def test_issue_token_refuses_bad_requests(overrides: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"ttl": HOUR, "now": NOW, **overrides}
    with pytest.raises(ValueError, match=message):
        issue_token(_auth(), sub="u", roles=["r"], satker="s", **arguments)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthSettings]:
    monkeypatch.setenv("ALUR_AUTH__JWT_SECRET", SECRET)
    monkeypatch.setenv("ALUR_AUTH__ALGORITHMS", "HS256")
    get_settings.cache_clear()
    yield get_settings().auth
    get_settings.cache_clear()


def test_cli_refuses_a_bad_ttl(cli_settings: AuthSettings) -> None:
    # Refused before the catalog and the database are read (tests/e2e/test_cli.py: the rest).
    result = CliRunner().invoke(
        app, ["token", "issue", "--sub", "u", "--roles", "r", "--satker", "s", "--ttl", "soon"]
    )
    assert result.exit_code == 2
    assert "not a positive duration" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8h", 28800), ("30m", 1800), ("45s", 45), ("1d", 86400), ("3600", 3600), (" 2H ", 7200)],
)
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)
