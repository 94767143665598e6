"""Request and response shapes of hook sources, inbound messages and receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.core.validation import StrictBody
from services.core.webhooks_in.service import SOURCE_NAME_PATTERN, HookKind, MessageStatus


class HookSourceCreate(StrictBody):
    name: str = Field(
        pattern=SOURCE_NAME_PATTERN,
        examples=["satgas-sipp-bengkulu"],
        description="The `{source}` of `POST /v1/hooks/{source}`.",
    )
    kind: HookKind
    satkers: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=200, description="The satkers the source's messages act in."
    )
    description: str = Field(default="", max_length=500)


class HookSourcePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: HookKind
    satkers: list[str]
    description: str
    created_by: str
    created_at: datetime


class HookSourceCreated(HookSourcePublic):
    secret: str = Field(
        description="The `whsec_…` signing secret. Shown only in this response: store it now."
    )


class HookSourceList(BaseModel):
    items: list[HookSourcePublic]


class HookReceipt(BaseModel):
    id: str = Field(description="Alur's id of the stored message (see `/v1/hook-messages`).")
    status: Literal["received", "duplicate"]


class HookMessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source: str
    message_id: str = Field(description="The sender's webhook-id.")
    received_at: datetime
    body: dict[str, Any]
    status: MessageStatus
    error: str | None
    result: dict[str, Any] | None
    processed_at: datetime | None


class HookMessageList(BaseModel):
    items: list[HookMessagePublic]
