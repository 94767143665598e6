"""Alur's own sign-in: `POST /v1/auth/token` (OAuth2 password grant), refresh, logout,
and `GET /.well-known/jwks.json` with the public keys its tokens verify with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import JSONResponse

from services.api.auth.schemas import (
    JsonWebKeySet,
    LogoutForm,
    PasswordGrant,
    RefreshGrant,
    TokenAnswer,
)
from services.api.deps import Context
from services.api.problems import problem_responses
from services.core.auth import service as auth
from services.core.auth.service import Tokens
from services.core.db import utcnow

router = APIRouter(tags=["sign-in"])

# RFC 6749 §5.1: token answers must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Other services may cache the key set; a rotation makes them read it again when a
# token names a kid they do not know.
JWKS_MAX_AGE_SECONDS = 300


def _address(request: Request) -> str:
    # Behind a proxy this is the client's address as uvicorn read it from the proxy
    # headers (`alur serve` runs with proxy_headers).
    return request.client.host if request.client else "unknown"


def _answer(tokens: Tokens, response: Response) -> TokenAnswer:
    response.headers.update(_NO_STORE)
    return TokenAnswer(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
    )


class JwkSetResponse(JSONResponse):
    media_type = "application/jwk-set+json"  # RFC 7517


@router.post(
    "/v1/auth/token",
    name="sign_in",
    response_model=TokenAnswer,
    summary="Sign in with a username and password (OAuth2 password grant)",
    description="Form fields `username`, `password` and, for a person with TOTP enabled, "
    "`totp`. Wrong credentials answer 400 `invalid_grant` (`totp_required` when only the "
    "code is missing); repeated failures per username or per client address lock "
    "sign-in for a while: 429 with `Retry-After`.",
    responses=problem_responses(400, 422, 429, 503),
)
async def token(
    form: Annotated[PasswordGrant, Form()],
    request: Request,
    response: Response,
    context: Context,
) -> TokenAnswer:
    # The signing key, (re)loaded before the transaction: on SQLite, loading it inside
    # would wait for the one writing connection this request holds.
    await context.sign_in.keys.signing_key()
    async with context.unit() as work:
        tokens = await auth.sign_in(
            work.session,
            context.sign_in,
            username=form.username,
            password=form.password,
            totp_code=form.totp,
            address=_address(request),
            now=utcnow(),
        )
    return _answer(tokens, response)


@router.post(
    "/v1/auth/refresh",
    name="refresh_token",
    response_model=TokenAnswer,
    summary="New tokens for a refresh token (which is spent)",
    description="A refresh token used twice was copied: its whole family is revoked and "
    "the person must sign in again.",
    responses=problem_responses(400, 422),
)
async def refresh(
    form: Annotated[RefreshGrant, Form()],
    request: Request,
    response: Response,
    context: Context,
) -> TokenAnswer:
    await context.sign_in.keys.signing_key()  # before the transaction, as in `token`
    # The transaction is committed before a refusal is answered: a reuse revokes.
    async with context.unit() as work:
        outcome = await auth.refresh_tokens(
            work.session,
            context.sign_in,
            form.refresh_token,
            address=_address(request),
            now=utcnow(),
        )
    if not isinstance(outcome, Tokens):
        raise auth.InvalidGrant(f"The refresh token is {outcome.reason}: sign in again")
    return _answer(outcome, response)


@router.post(
    "/v1/auth/logout",
    name="sign_out",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a refresh token (and the tokens refreshed from the same sign-in)",
    description="Answers 204 for any token, known or not (RFC 7009). The access token "
    "stays valid until it expires (minutes).",
    responses=problem_responses(422),
)
async def logout(form: Annotated[LogoutForm, Form()], request: Request, context: Context) -> None:
    async with context.unit() as work:
        await auth.logout(work.session, form.refresh_token, address=_address(request), now=utcnow())


@router.get(
    "/.well-known/jwks.json",
    name="get_jwks",
    response_model=JsonWebKeySet,
    response_class=JwkSetResponse,
    summary="The public keys Alur's tokens are signed with (JWKS)",
    tags=["sign-in"],
)
async def jwks(context: Context) -> JwkSetResponse:
    return JwkSetResponse(
        await context.keys.jwks(),
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"},
    )
