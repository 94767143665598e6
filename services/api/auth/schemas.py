"""Form fields of the token endpoints (OAuth2, RFC 6749) and the token answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.core.auth.passwords import MAX_LENGTH


class _Form(BaseModel):
    # Unknown fields are refused; `scope` is accepted (OAuth2 clients send it) and
    # ignored: a token carries the person's roles, not scopes.
    model_config = ConfigDict(extra="forbid")

    scope: str | None = Field(default=None, max_length=1000, description="Ignored.")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("may not contain U+0000")
        return value


class PasswordGrant(_Form):
    grant_type: Literal["password"] | None = Field(default=None, description="`password`.")
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)
    totp: str | None = Field(
        default=None,
        pattern=r"^[0-9]{6}$",
        description="The authenticator's code, for a person with TOTP enabled.",
    )


class RefreshGrant(_Form):
    grant_type: Literal["refresh_token"] | None = Field(
        default=None, description="`refresh_token`."
    )
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutForm(_Form):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenAnswer(BaseModel):
    access_token: str = Field(description="An ES256 JWT; send it as `Authorization: Bearer`.")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid.")
    refresh_token: str = Field(
        description="Opaque; trade it at /v1/auth/refresh for new tokens (once: each use "
        "gives a new one)."
    )
    refresh_expires_in: int = Field(description="Seconds the refresh token is valid.")


class JsonWebKeySet(BaseModel):
    model_config = ConfigDict(extra="allow")

    keys: list[dict[str, str]]
