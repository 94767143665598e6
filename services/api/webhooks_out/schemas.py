"""Request and response shapes of webhook subscriptions, deliveries and event types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.core.validation import StrictBody, WebUrl

DeliveryStatus = Literal["pending", "succeeded", "failed", "dead"]
EventType = Annotated[str, Field(min_length=1, max_length=64)]


class SubscriptionCreate(StrictBody):
    url: WebUrl = Field(description="Where to POST (http or https, a public address).")
    event_types: list[EventType] = Field(
        min_length=1,
        max_length=100,
        description="Event types, `prefix.*` wildcards (`task.*`) or `*` for every event.",
    )
    active: bool = True
    description: str = Field(default="", max_length=500)


class SubscriptionUpdate(StrictBody):
    url: WebUrl | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=100)
    active: bool | None = Field(
        default=None, description="true re-enables a disabled subscription."
    )
    description: str | None = Field(default=None, max_length=500)


class SubscriptionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    satker_id: str
    url: str
    event_types: list[str]
    active: bool
    description: str
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation signs as well."
    )
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionPublic):
    secret: str = Field(description="The signing secret (`whsec_…`), shown only this once.")


class SubscriptionList(BaseModel):
    items: list[SubscriptionPublic]


class SecretRotate(StrictBody):
    overlap_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="How long the old secret keeps signing too (default: 24 h, or "
        "ALUR_WEBHOOKS__SECRET_OVERLAP_SECONDS).",
    )


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret, shown only this once.")
    previous_secret_expires_at: datetime | None


class AttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int | None = Field(
        description="null: the attempt is under way, or its "
        "worker stopped before recording the result."
    )


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subscription_id: str
    event_type: str
    event_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[AttemptPublic]


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class EventTypePublic(BaseModel):
    type: str
    description: str
    schema_: dict[str, Any] = Field(serialization_alias="schema", validation_alias="schema")
    example: dict[str, Any]


class EventTypeList(BaseModel):
    items: list[EventTypePublic]
