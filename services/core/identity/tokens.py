"""Bearer tokens: verify a JWT into a `Principal`, and mint tokens for development.

The token never chooses the kind of key that verifies it: HS256 is checked only against
the configured secret and RS256/ES256 only against the JWKS file's public keys, which
closes the HS/RS confusion attack (an HMAC "signed" with a published RSA public key).
Time claims are checked here against an injectable `now`, because python-jose's own
checks always read the wall clock.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jose import jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from services.core.errors import AlurError
from services.core.settings import AuthSettings

REALM = "alur"
SUPPORTED_ALGORITHMS = ("HS256", "RS256", "ES256")
# The JWK key type each asymmetric algorithm is verified with.
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
# Tokens whose signature a verifier remembers having checked (least recently used out).
VERIFIED_TOKEN_CACHE = 4096
_DEFAULT_ALGORITHM = {kty: alg for alg, kty in _KEY_TYPES.items()}


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    name: str | None
    roles: frozenset[str]
    satker: str


class Unauthorized(AlurError):
    """No valid bearer token; answered 401 with an RFC 6750 `WWW-Authenticate` challenge."""

    code = "invalid_token"
    status = 401
    title = "Invalid token"

    def __init__(self, detail: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail, extra=extra)
        # The API's problem handler sends this attribute as response headers.
        self.headers = {"WWW-Authenticate": self._challenge()}

    def _challenge(self) -> str:
        return (
            f'Bearer realm="{REALM}", error="invalid_token", '
            f'error_description="{_header_safe(self.detail)}"'
        )


class TokenExpired(Unauthorized):
    code = "token_expired"
    title = "Token expired"


class TokenMissing(Unauthorized):
    code = "token_missing"
    title = "Authentication required"

    def __init__(
        self,
        detail: str = "A bearer token is required (Authorization: Bearer <token>)",
        *,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail, extra=extra)

    def _challenge(self) -> str:
        # RFC 6750 §3.1: a request without credentials gets no error code.
        return f'Bearer realm="{REALM}"'


@dataclass(frozen=True, slots=True)
class _PublicKey:
    kid: str | None
    algorithm: str
    key: Key


class TokenVerifier:
    """Checks signature, algorithm, `exp`/`nbf`, `iss`, `aud` and Alur's own claims.

    Construction fails with `ValueError` on a configuration that could not verify the
    allowed algorithms, so a misconfigured API refuses to start instead of refusing users.
    """

    def __init__(self, auth: AuthSettings) -> None:
        if not auth.algorithms:
            raise ValueError("ALUR_AUTH__ALGORITHMS is empty: allow HS256, RS256 or ES256")
        unsupported = [a for a in auth.algorithms if a not in SUPPORTED_ALGORITHMS]
        if unsupported:
            raise ValueError(
                f"unsupported JWT algorithm(s) {', '.join(unsupported)} in "
                f"ALUR_AUTH__ALGORITHMS (supported: {', '.join(SUPPORTED_ALGORITHMS)})"
            )
        self._algorithms = frozenset(auth.algorithms)
        # Clients send the same token with every request until it expires: its signature
        # is checked once, its claims (exp, nbf, iss, aud...) on every request. Only
        # tokens that passed are kept; the keys are fixed for the verifier's life.
        self._signed_claims = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE)(self._claims_of)
        self._issuer = auth.issuer
        self._audience = auth.audience
        self._leeway = auth.leeway_seconds
        self._keys: dict[str, tuple[_PublicKey, ...]] = {}
        if "HS256" in self._algorithms:
            self._keys["HS256"] = (_PublicKey(None, "HS256", _secret_key(auth)),)
        asymmetric = sorted(self._algorithms & _KEY_TYPES.keys())
        if auth.jwks_file is None:
            if asymmetric:
                raise ValueError(
                    f"{', '.join(asymmetric)} allowed but ALUR_AUTH__JWKS_FILE is not set "
                    "(public keys are needed to verify them)"
                )
            return
        public_keys = _load_jwks(auth.jwks_file)
        for algorithm in asymmetric:
            self._keys[algorithm] = tuple(k for k in public_keys if k.algorithm == algorithm)
            if not self._keys[algorithm]:
                raise ValueError(
                    f"{algorithm} is allowed but the JWKS file {auth.jwks_file} has no "
                    f"{_KEY_TYPES[algorithm]} key for it"
                )

    def verify(self, token: str, *, now: datetime | None = None) -> Principal:
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        token = token.strip()
        if not token:
            raise TokenMissing()
        return self._principal(self._signed_claims(token), now or datetime.now(UTC))

    def _claims_of(self, token: str) -> Mapping[str, Any]:
        """The claims of a token whose algorithm and signature are good (not yet checked)."""
        try:
            header = jws.get_unverified_header(token)
        except JOSEError:
            raise Unauthorized(
                "The token is malformed: expected a JWS (three base64url segments)"
            ) from None
        algorithm = self._allowed_algorithm(header)
        payload = self._verified_payload(token, algorithm, header.get("kid"))
        try:
            claims = json.loads(payload)
        except ValueError:
            raise Unauthorized("The token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise Unauthorized("The token payload is not a JSON object")
        return MappingProxyType(claims)

    def _allowed_algorithm(self, header: Mapping[str, Any]) -> str:
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or not algorithm:
            raise Unauthorized("The token header names no algorithm ('alg')")
        if algorithm.lower() == "none":
            raise Unauthorized("Unsigned tokens (alg 'none') are not accepted")
        if algorithm not in self._algorithms:
            allowed = ", ".join(sorted(self._algorithms))
            raise Unauthorized(f"Algorithm {_shown(algorithm)} is not allowed (allowed: {allowed})")
        return algorithm

    def _verified_payload(self, token: str, algorithm: str, kid: object) -> bytes:
        candidates = self._keys[algorithm]
        # A kid narrows the asymmetric keys; HS256 has exactly one key, the secret.
        if algorithm in _KEY_TYPES and kid is not None:
            if not isinstance(kid, str):
                raise Unauthorized("The token header 'kid' must be a string")
            candidates = tuple(k for k in candidates if k.kid == kid)
            if not candidates:
                raise Unauthorized(f"No {algorithm} key with kid {_shown(kid)} is configured")
        for candidate in candidates:
            try:
                return jws.verify(token, candidate.key, algorithms=[algorithm])
            except JOSEError:
                continue
        raise Unauthorized("The token signature is not valid")

    def _principal(self, claims: Mapping[str, Any], now: datetime) -> Principal:
        moment = now.timestamp()
        expires = _numeric_date(claims, "exp")
        if expires is None:
            raise Unauthorized("The token is missing the claim 'exp'")
        if moment >= expires + self._leeway:
            raise TokenExpired("The token has expired; obtain a new one")
        not_before = _numeric_date(claims, "nbf")
        if not_before is not None and moment + self._leeway < not_before:
            raise Unauthorized("The token is not valid yet (nbf is in the future)")
        _numeric_date(claims, "iat")

        issuer = _required(claims, "iss")
        if issuer != self._issuer:
            raise Unauthorized(
                f"Wrong issuer: the token's iss is {_shown(issuer)}, expected {self._issuer!r}"
            )
        audience = _required(claims, "aud")
        # RFC 7519 §4.1.3: `aud` is one string or a list of them.
        audiences = audience if isinstance(audience, list) else [audience]
        if self._audience not in audiences:
            raise Unauthorized(
                f"Wrong audience: the token's aud is {_shown(audience)}, "
                f"expected {self._audience!r}"
            )

        sub = _required(claims, "sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("Claim 'sub' must be a non-empty string")
        roles = _required(claims, "roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise Unauthorized("Claim 'roles' must be a list of role ids (strings)")
        satker = _required(claims, "satker")
        if not isinstance(satker, str) or not satker:
            raise Unauthorized("Claim 'satker' must be a non-empty string")
        name = claims.get("name")
        if name is not None and not isinstance(name, str):
            raise Unauthorized("Claim 'name' must be a string")
        return Principal(sub=sub, name=name, roles=frozenset(roles), satker=satker)


def issue_token(
    auth: AuthSettings,
    *,
    sub: str,
    roles: Iterable[str],
    satker: str,
    name: str | None = None,
    ttl: timedelta,
    now: datetime,
    private_key_pem: str | None = None,
    algorithm: str = "HS256",
    kid: str | None = None,
) -> str:
    """Sign a token the API accepts: HS256 with the secret, RS256/ES256 with a private key."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    if algorithm == "HS256":
        if private_key_pem is not None:
            raise ValueError("HS256 tokens are signed with the configured secret, not a key")
        key = auth.jwt_secret.get_secret_value()
    elif algorithm in _KEY_TYPES:
        if private_key_pem is None:
            raise ValueError(f"{algorithm} tokens need private_key_pem")
        key = private_key_pem
    else:
        raise ValueError(
            f"cannot issue {algorithm!r} tokens (use {', '.join(SUPPORTED_ALGORITHMS)})"
        )
    claims: dict[str, Any] = {
        "iss": auth.issuer,
        "aud": auth.audience,
        "sub": sub,
        "roles": sorted(set(roles)),
        "satker": satker,
        "iat": math.floor(now.timestamp()),
        "exp": math.floor((now + ttl).timestamp()),
    }
    if name is not None:
        claims["name"] = name
    headers = {"kid": kid} if kid is not None else None
    try:
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    except JOSEError as exc:
        raise ValueError(f"cannot sign a {algorithm} token with the given key: {exc}") from exc


def jwks_from_public_pems(pems: Mapping[str, str]) -> dict[str, list[dict[str, str]]]:
    """A JWKS document (`ALUR_AUTH__JWKS_FILE`) from public key PEMs, keyed by kid.

    RSA keys become RS256 keys, EC P-256 keys ES256 keys. Operators can run::

        python -c 'import json; from services.core.identity.tokens import \\
            jwks_from_public_pems as j; print(json.dumps(j({"k1": open("pub.pem").read()})))'
    """
    keys: list[dict[str, str]] = []
    for kid, pem in pems.items():
        try:
            public_key = load_pem_public_key(pem.encode())
        except ValueError as exc:
            raise ValueError(f"kid {kid!r}: not a PEM public key") from exc
        if isinstance(public_key, rsa.RSAPublicKey):
            algorithm = "RS256"
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
            public_key.curve, ec.SECP256R1
        ):
            algorithm = "ES256"
        else:
            raise ValueError(f"kid {kid!r}: only RSA and EC P-256 public keys are supported")
        entry = {str(k): str(v) for k, v in jwk.construct(pem, algorithm).to_dict().items()}
        keys.append({**entry, "kid": kid, "use": "sig"})
    return {"keys": keys}


def _secret_key(auth: AuthSettings) -> Key:
    secret = auth.jwt_secret.get_secret_value()
    if not secret:
        raise ValueError("ALUR_AUTH__JWT_SECRET is empty but HS256 is allowed")
    try:
        return jwk.construct(secret, "HS256")
    except JOSEError as exc:
        # python-jose refuses PEM/SSH material as an HMAC secret; say so without echoing it.
        raise ValueError(f"ALUR_AUTH__JWT_SECRET cannot be used as an HS256 secret: {exc}") from exc


def _load_jwks(path: Path) -> tuple[_PublicKey, ...]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"JWKS file {path} cannot be read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValueError(f"JWKS file {path} is not valid JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"JWKS file {path} has no 'keys' list")
    keys: list[_PublicKey] = []
    for index, entry in enumerate(entries):
        where = f"JWKS file {path}, key #{index}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not a JSON object")
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ValueError(f"{where}: 'kid' must be a string")
        if kid is not None:
            where = f"{where} (kid {kid!r})"
        kty = entry.get("kty")
        if kty == "oct":
            raise ValueError(f"{where} is a symmetric key: HS256 uses ALUR_AUTH__JWT_SECRET only")
        if "d" in entry:
            raise ValueError(f"{where} contains a private key: the file must hold public keys")
        if entry.get("use", "sig") != "sig":
            continue  # providers publish encryption keys in the same document
        algorithm = entry.get("alg") or _DEFAULT_ALGORITHM.get(str(kty))
        if algorithm not in _KEY_TYPES or _KEY_TYPES[algorithm] != kty:
            raise ValueError(
                f"{where}: kty {kty!r} with alg {algorithm!r} is not supported "
                "(RSA keys for RS256, EC P-256 keys for ES256)"
            )
        if algorithm == "ES256" and entry.get("crv") != "P-256":
            raise ValueError(f"{where}: ES256 needs curve P-256, not {entry.get('crv')!r}")
        if kid is not None and any(k.kid == kid for k in keys):
            raise ValueError(f"{where}: duplicate kid")
        try:
            key = jwk.construct(entry, algorithm)
        except (JOSEError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{where} is not a valid {kty} public key: {exc}") from exc
        keys.append(_PublicKey(kid, algorithm, key))
    return tuple(keys)


def _required(claims: Mapping[str, Any], name: str) -> Any:
    if name not in claims:
        raise Unauthorized(f"The token is missing the claim {name!r}")
    return claims[name]


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    refused = Unauthorized(f"Claim {name!r} must be a number of seconds since the epoch")
    # bool is an int subclass and json accepts NaN/Infinity; neither is a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refused
    try:
        seconds = float(value)
    except OverflowError:  # an integer beyond any float, e.g. 10**400
        raise refused from None
    if not math.isfinite(seconds):
        raise refused
    return seconds


def _shown(value: object) -> str:
    """Echo a value taken from the token, bounded so a client cannot bloat our answers."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _header_safe(text: str) -> str:
    """RFC 6750 error_description allows printable ASCII except `"` and `\\`."""
    return "".join(
        "'" if char == '"' else char if " " <= char <= "~" and char != "\\" else "?"
        for char in text
    )
