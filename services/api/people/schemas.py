"""Request and response shapes of people, acting assignments and TOTP enrolment."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    model_validator,
)

from services.core.auth.passwords import MAX_LENGTH, MIN_LENGTH, check_policy
from services.core.notifications.kinds import KINDS, check_channels
from services.core.people.acting import in_effect
from services.core.people.service import (
    USERNAME_PATTERN,
    check_nip,
    check_telegram_chat_id,
    e164,
)
from services.core.validation import StrictBody

if TYPE_CHECKING:
    from services.core.people.models import ActingRecord, PersonRecord

Username = Annotated[str, Field(pattern=USERNAME_PATTERN, examples=["budi.santoso"])]
Name = Annotated[str, Field(min_length=1, max_length=200, examples=["Budi Santoso, S.Kom."])]
RoleId = Annotated[str, Field(min_length=1, max_length=64, examples=["staf_ti"])]
SatkerId = Annotated[str, Field(min_length=1, max_length=64, examples=["pn-tais"])]
Nip = Annotated[
    str,
    Field(min_length=18, max_length=18, examples=["198703152010121002"]),
    AfterValidator(check_nip),
]
WhatsApp = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="E.164 (+6281234567890); a local form (0812-3456-7890) is read as "
        "Indonesian and stored as E.164.",
        examples=["+6281234567890"],
    ),
    AfterValidator(e164),
]
TelegramChatId = Annotated[
    str, Field(min_length=1, max_length=21), AfterValidator(check_telegram_chat_id)
]
Email = Annotated[EmailStr, Field(max_length=254)]
NotifyChannels = Annotated[
    dict[str, list[str]],
    Field(
        max_length=len(KINDS),
        description="Channels (`email`, `whatsapp`, `telegram`) per kind of notification ("
        + ", ".join(f"`{kind}`" for kind in KINDS)
        + "); a kind not named goes by the court's default, an empty list turns it off.",
        examples=[{"task_opened": ["email", "whatsapp"], "monitor_up": []}],
    ),
    AfterValidator(check_channels),
]
NotifyDigest = Annotated[
    bool, Field(description="Due-soon items once a day, together, rather than one by one.")
]
Password = Annotated[
    str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH), AfterValidator(check_policy)
]


class PersonCreate(StrictBody):
    username: Username
    name: Name
    satker: SatkerId | None = Field(
        default=None, description="The person's satker; default: the admin's own."
    )
    nip: Nip | None = None
    roles: list[RoleId] = Field(default_factory=list, max_length=30)
    email: Email | None = None
    whatsapp: WhatsApp | None = None
    telegram_chat_id: TelegramChatId | None = None
    notify_channels: NotifyChannels = Field(default_factory=dict)
    notify_digest: NotifyDigest = False
    active: bool = True
    password: Password | None = Field(
        default=None, description="The first password (10 to 1024 characters)."
    )


class PersonUpdate(StrictBody):
    """Only the fields sent change; `null` clears an optional one. A person may change
    their own contacts (`email`, `whatsapp`, `telegram_chat_id`) and how they are told
    (`notify_channels`, `notify_digest`); the rest is an admin's."""

    name: Name | None = None
    satker: SatkerId | None = None
    nip: Nip | None = None
    roles: list[RoleId] | None = Field(default=None, max_length=30)
    email: Email | None = None
    whatsapp: WhatsApp | None = None
    telegram_chat_id: TelegramChatId | None = None
    notify_channels: NotifyChannels | None = None
    notify_digest: NotifyDigest | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _null_only_clears(self) -> PersonUpdate:
        for required in ("name", "satker", "roles", "active", "notify_channels", "notify_digest"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent, by their column names."""
        sent = self.model_dump(exclude_unset=True)
        if "satker" in sent:
            sent["satker_id"] = sent.pop("satker")
        return sent


class PersonPublic(BaseModel):
    username: str
    satker: str
    name: str
    nip: str | None
    roles: list[str]
    email: str | None
    whatsapp: str | None
    telegram_chat_id: str | None
    notify_channels: dict[str, list[str]]
    notify_digest: bool
    active: bool
    has_password: bool
    totp_enabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, person: PersonRecord) -> PersonPublic:
        return cls(
            username=person.username,
            satker=person.satker_id,
            name=person.name,
            nip=person.nip,
            roles=person.roles,
            email=person.email,
            whatsapp=person.whatsapp,
            telegram_chat_id=person.telegram_chat_id,
            notify_channels=person.notify_channels or {},
            notify_digest=person.notify_digest,
            active=person.active,
            has_password=person.password_hash is not None,
            totp_enabled=person.totp_enabled,
            created_at=person.created_at,
            updated_at=person.updated_at,
        )


class PersonPage(BaseModel):
    items: list[PersonPublic]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null on the last one."
    )


class PasswordChange(StrictBody):
    current_password: str | None = Field(
        default=None,
        max_length=MAX_LENGTH,
        description="Required when changing your own password.",
    )
    new_password: Password


class ActingCreate(StrictBody):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    role: RoleId = Field(examples=["kasubbag_ptip"])
    satker: SatkerId | None = Field(default=None, description="Default: the person's satker.")
    starts_at: AwareDatetime = Field(alias="from", examples=["2026-12-07T08:00:00+07:00"])
    ends_at: AwareDatetime = Field(alias="to", examples=["2026-12-11T16:30:00+07:00"])
    reason: str = Field(
        min_length=1, max_length=500, examples=["Plh Kasubbag PTIP selama Kasubbag cuti"]
    )
    kind: Literal["plh", "plt"] = Field(
        default="plh",
        description="`plh` (pelaksana harian: the holder is briefly away) or `plt` "
        "(pelaksana tugas: the post is vacant).",
    )
    holder: Username | None = Field(
        default=None,
        description="Whom the person stands in for; default: the one holder of the role "
        "in that satker, if there is exactly one.",
    )


class ActingPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    username: str
    role: str
    satker: str
    kind: str
    holder: str | None
    starts_at: datetime = Field(serialization_alias="from")
    ends_at: datetime = Field(serialization_alias="to")
    reason: str
    created_by: str
    created_at: datetime
    ended_early_at: datetime | None = Field(description="When an admin ended it early.")
    in_effect: bool = Field(description="Whether it is in effect at the time of the answer.")

    @classmethod
    def of(cls, record: ActingRecord, now: datetime) -> ActingPublic:
        return cls(
            id=record.id,
            username=record.username,
            role=record.role,
            satker=record.satker_id,
            kind=record.kind,
            holder=record.holder,
            starts_at=record.starts_at,
            ends_at=record.ends_at,
            reason=record.reason,
            created_by=record.created_by,
            created_at=record.created_at,
            ended_early_at=record.revoked_at,
            in_effect=in_effect(record, now),
        )


class ActingList(BaseModel):
    items: list[ActingPublic]


class TotpBegin(StrictBody):
    password: str = Field(min_length=1, max_length=MAX_LENGTH, description="Your password, again.")


class TotpSecret(BaseModel):
    secret: str = Field(description="The shared secret (base32), shown this once.")
    otpauth_uri: str = Field(description="For an authenticator app (as a QR code).")


class TotpConfirm(StrictBody):
    code: str = Field(pattern=r"^[0-9]{6}$", description="A code the authenticator shows.")
