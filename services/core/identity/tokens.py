"""Bearer tokens: verify a JWT into a `Principal`, and mint tokens.

Three kinds of key verify, each with its own issuer and audience:
- Alur's own ES256 keys (`services.core.auth.keys`), whatever `ALUR_AUTH__ALGORITHMS`
  says: the tokens Alur issues at sign-in;
- an identity provider's RS256/ES256 public keys, from the JWKS file and/or the JWKS URL
  (`idp_issuer`/`idp_audience`, by default `issuer`/`audience`);
- the HS256 secret, for development (`alur token issue`).
Keys that change while the API runs (Alur's own, a JWKS URL) are `KeySource`s: the
verifier uses their current copy and has them refreshed when stale, or at once when a
token names a kid nobody knows (a key rotated on another replica).

The token never chooses the kind of key that verifies it: HS256 is checked only against
the configured secret and RS256/ES256 only against public keys, which closes the HS/RS
confusion attack (an HMAC "signed" with a published RSA public key). Time claims are
checked here against an injectable `now`, because python-jose's own checks always read
the wall clock.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jose import jwk, jws, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from services.core.errors import AlurError
from services.core.settings import AuthSettings

REALM = "alur"
SUPPORTED_ALGORITHMS = ("HS256", "RS256", "ES256")
# What Alur signs its own tokens with.
OWN_ALGORITHM = "ES256"
# The JWK key type each asymmetric algorithm is verified with.
_KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
# Tokens whose signature a verifier remembers having checked (least recently used out).
VERIFIED_TOKEN_CACHE = 4096
# The longest claim values the database keeps (who did a step, their display name, a
# satker or role id); a longer one from any issuer is refused, never cut or stored.
MAX_SUBJECT_LENGTH = 200
MAX_ID_LENGTH = 64
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


class KeyNotKnown(Unauthorized):
    """The token names a kid no configured key has (yet): worth refreshing the keys."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    kid: str | None
    algorithm: str
    key: Key


class KeySource(Protocol):
    """Public keys that change while the API runs (Alur's own, a JWKS URL)."""

    def public_keys(self) -> Sequence[PublicKey]:
        """The keys as last loaded."""
        ...

    def stale(self) -> bool:
        """The copy is older than it may be trusted: refresh before verifying."""
        ...

    async def refresh(self, *, unknown_kid: bool = False) -> None:
        """Load the keys again. For an `unknown_kid`, at most as often as the source
        allows (a client sending made-up kids must not make every request a reload)."""
        ...


@dataclass(frozen=True, slots=True)
class _Trust:
    """Who a key speaks for: the `iss` and `aud` its tokens must carry."""

    issuer: str
    audience: str


class TokenVerifier:
    """Checks signature, algorithm, `exp`/`nbf`, `iss`, `aud` and Alur's own claims.

    Construction fails with `ValueError` on a configuration that could not verify the
    allowed algorithms, so a misconfigured API refuses to start instead of refusing users.
    `own_keys` are Alur's signing keys; `remote_keys` an identity provider's JWKS URL.
    """

    def __init__(
        self,
        auth: AuthSettings,
        *,
        own_keys: KeySource | None = None,
        remote_keys: KeySource | None = None,
    ) -> None:
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
        # tokens that passed are kept. A key leaves a source only after the last token
        # it signed has expired, so a kept token never outlives its key's trust.
        self._signed_claims = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE)(self._claims_of)
        self._leeway = auth.leeway_seconds
        self._own_trust = _Trust(auth.issuer, auth.audience)
        self._idp_trust = _Trust(auth.idp_issuer or auth.issuer, auth.idp_audience or auth.audience)
        self._own = own_keys
        self._remote = remote_keys
        self._keys: dict[str, tuple[PublicKey, ...]] = {}
        if "HS256" in self._algorithms:
            self._keys["HS256"] = (PublicKey(None, "HS256", _secret_key(auth)),)
        asymmetric = sorted(self._algorithms & _KEY_TYPES.keys())
        if auth.jwks_file is None:
            if asymmetric and remote_keys is None:
                raise ValueError(
                    f"{', '.join(asymmetric)} allowed but ALUR_AUTH__JWKS_FILE is not set "
                    "(nor ALUR_AUTH__JWKS_URL: public keys are needed to verify them)"
                )
            for algorithm in asymmetric:
                self._keys[algorithm] = ()
            return
        public_keys = _load_jwks(auth.jwks_file)
        for algorithm in asymmetric:
            self._keys[algorithm] = tuple(k for k in public_keys if k.algorithm == algorithm)
            if not self._keys[algorithm] and remote_keys is None:
                raise ValueError(
                    f"{algorithm} is allowed but the JWKS file {auth.jwks_file} has no "
                    f"{_KEY_TYPES[algorithm]} key for it"
                )

    @property
    def _sources(self) -> tuple[KeySource, ...]:
        return tuple(source for source in (self._own, self._remote) if source is not None)

    async def authenticate(self, token: str, *, now: datetime | None = None) -> Principal:
        """`verify`, with the changing keys refreshed first when stale, and once more
        when the token names a kid none of them knows."""
        for source in self._sources:
            if source.stale():
                await source.refresh()
        try:
            return self.verify(token, now=now)
        except KeyNotKnown:
            for source in self._sources:
                await source.refresh(unknown_kid=True)
            return self.verify(token, now=now)

    def verify(self, token: str, *, now: datetime | None = None) -> Principal:
        """The principal of a token, with the keys as currently known."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        token = token.strip()
        if not token:
            raise TokenMissing()
        claims, trust = self._signed_claims(token)
        return self._principal(claims, trust, now or datetime.now(UTC))

    def _claims_of(self, token: str) -> tuple[Mapping[str, Any], _Trust]:
        """The claims of a token whose algorithm and signature are good (not yet
        checked), and whom the key that signed it speaks for."""
        try:
            header = jws.get_unverified_header(token)
        except JOSEError:
            raise Unauthorized(
                "The token is malformed: expected a JWS (three base64url segments)"
            ) from None
        payload, trust = self._verified_payload(token, header)
        try:
            claims = json.loads(payload)
        except ValueError:
            raise Unauthorized("The token payload is not JSON") from None
        if not isinstance(claims, dict):
            raise Unauthorized("The token payload is not a JSON object")
        return MappingProxyType(claims), trust

    def _verified_payload(self, token: str, header: Mapping[str, Any]) -> tuple[bytes, _Trust]:
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or not algorithm:
            raise Unauthorized("The token header names no algorithm ('alg')")
        if algorithm.lower() == "none":
            raise Unauthorized("Unsigned tokens (alg 'none') are not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("The token header 'kid' must be a string")
        if self._own is not None and algorithm == OWN_ALGORITHM and kid is not None:
            own = tuple(k for k in self._own.public_keys() if k.kid == kid)
            if own:
                return _verify_with(token, algorithm, own), self._own_trust
        if algorithm not in self._algorithms:
            if self._own is not None and algorithm == OWN_ALGORITHM and kid is not None:
                # Perhaps a key rotated in on another replica since the last refresh.
                raise KeyNotKnown(f"No {algorithm} key with kid {_shown(kid)} is known")
            allowed = ", ".join(sorted(self._algorithms))
            raise Unauthorized(f"Algorithm {_shown(algorithm)} is not allowed (allowed: {allowed})")
        if algorithm not in _KEY_TYPES:
            # HS256 has exactly one key, the secret (development tokens).
            return _verify_with(token, algorithm, self._keys[algorithm]), self._own_trust
        candidates = self._keys[algorithm]
        if self._remote is not None:
            candidates += tuple(k for k in self._remote.public_keys() if k.algorithm == algorithm)
        # A kid narrows the asymmetric keys.
        if kid is not None:
            candidates = tuple(k for k in candidates if k.kid == kid)
            if not candidates:
                refusal = KeyNotKnown if self._sources else Unauthorized
                raise refusal(f"No {algorithm} key with kid {_shown(kid)} is configured")
        return _verify_with(token, algorithm, candidates), self._idp_trust

    def _principal(self, claims: Mapping[str, Any], trust: _Trust, now: datetime) -> Principal:
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
        if issuer != trust.issuer:
            raise Unauthorized(
                f"Wrong issuer: the token's iss is {_shown(issuer)}, expected {trust.issuer!r}"
            )
        audience = _required(claims, "aud")
        # RFC 7519 §4.1.3: `aud` is one string or a list of them.
        audiences = audience if isinstance(audience, list) else [audience]
        if trust.audience not in audiences:
            raise Unauthorized(
                f"Wrong audience: the token's aud is {_shown(audience)}, "
                f"expected {trust.audience!r}"
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
        for claim, value, longest in (
            ("sub", sub, MAX_SUBJECT_LENGTH),
            ("name", name or "", MAX_SUBJECT_LENGTH),
            ("satker", satker, MAX_ID_LENGTH),
            *(("roles", role, MAX_ID_LENGTH) for role in roles),
        ):
            if len(value) > longest or "\x00" in value:
                raise Unauthorized(
                    f"Claim {claim!r} must be at most {longest} characters, without U+0000"
                )
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
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """Sign a token the API accepts: HS256 with the secret, RS256/ES256 with a private key.
    `extra_claims` are added as they are (they cannot replace the standard ones)."""
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
    for claim, value in (extra_claims or {}).items():
        claims.setdefault(claim, value)
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


def _load_jwks(path: Path) -> tuple[PublicKey, ...]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"JWKS file {path} cannot be read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValueError(f"JWKS file {path} is not valid JSON: {exc}") from exc
    return parse_jwks(document, f"JWKS file {path}")


def parse_jwks(document: object, where: str, *, strict: bool = True) -> tuple[PublicKey, ...]:
    """The signature keys of a JWKS document. `strict`: a key Alur cannot use is an
    error (a file the operator wrote); otherwise it is left out (a provider's URL may
    publish keys for other uses and algorithms)."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{where} has no 'keys' list")
    keys: list[PublicKey] = []
    for index, entry in enumerate(entries):
        try:
            key = _public_key(entry, f"{where}, key #{index}", keys)
        except ValueError:
            if strict:
                raise
            continue
        if key is not None:
            keys.append(key)
    return tuple(keys)


def public_key_from_jwk(entry: Mapping[str, Any]) -> PublicKey:
    """One public key from its JWK (RS256 or ES256)."""
    key = _public_key(entry, "JWK", [])
    if key is None:
        raise ValueError("JWK is not a signature key")
    return key


def _public_key(entry: object, where: str, known: Sequence[PublicKey]) -> PublicKey | None:
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
        return None  # providers publish encryption keys in the same document
    algorithm = entry.get("alg") or _DEFAULT_ALGORITHM.get(str(kty))
    if algorithm not in _KEY_TYPES or _KEY_TYPES[algorithm] != kty:
        raise ValueError(
            f"{where}: kty {kty!r} with alg {algorithm!r} is not supported "
            "(RSA keys for RS256, EC P-256 keys for ES256)"
        )
    if algorithm == "ES256" and entry.get("crv") != "P-256":
        raise ValueError(f"{where}: ES256 needs curve P-256, not {entry.get('crv')!r}")
    if kid is not None and any(k.kid == kid for k in known):
        raise ValueError(f"{where}: duplicate kid")
    try:
        key = jwk.construct(entry, algorithm)
    except (JOSEError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{where} is not a valid {kty} public key: {exc}") from exc
    return PublicKey(kid, algorithm, key)


def _verify_with(token: str, algorithm: str, candidates: Sequence[PublicKey]) -> bytes:
    for candidate in candidates:
        try:
            return jws.verify(token, candidate.key, algorithms=[algorithm])
        except JOSEError:
            continue
    raise Unauthorized("The token signature is not valid")


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
