"""Every event type a subscription can ask for: what it means, the JSON Schema of its
payload and an example. This is the published contract of the webhook bodies.

Two envelopes: an instance's audit event (`evt_<n>`, with the instance, its SOP, the
task and the actor; `data` holds the task or instance state before and after) and a
finding outside any instance (`fnd_<n>`, with the subject it is about).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Literal

from services.core.errors import AlurError

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
TIME: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**properties, **(optional or {})},
        "required": list(properties),
    }


EXAMPLE_TIME = "2026-11-24T02:00:00+00:00"
TASK_STATE = obj(
    {
        "id": STRING,
        "step_id": STRING,
        "lane": STRING,
        "kind": {"enum": ["task", "decision", "automated", "external"]},
        "status": {"enum": ["open", "completed", "cancelled"]},
        "opened_at": TIME,
        "warn_at": nullable(TIME),
        "due_at": nullable(TIME),
        "assignee": nullable(STRING),
        "claimed_at": nullable(TIME),
        "completed_at": nullable(TIME),
        "completed_by": nullable(STRING),
        "outcome": nullable(STRING),
        "note": nullable(STRING),
        "evidence": {"type": "array", "items": STRING},
        "warned_at": nullable(TIME),
        "escalation_level": INTEGER,
        "next_check_at": nullable(TIME),
        "flag": nullable(STRING),
    }
)
TASK_EXAMPLE: dict[str, Any] = {
    "id": "5f0c8a52-3c1e-4d7a-9a54-0c1f2b7d9e11",
    "step_id": "s1",
    "lane": "staf_ti",
    "kind": "task",
    "status": "open",
    "opened_at": EXAMPLE_TIME,
    "warn_at": "2026-11-24T05:00:00+00:00",
    "due_at": "2026-11-24T06:00:00+00:00",
    "assignee": None,
    "claimed_at": None,
    "completed_at": None,
    "completed_by": None,
    "outcome": None,
    "note": None,
    "evidence": [],
    "warned_at": None,
    "escalation_level": 0,
    "next_check_at": "2026-11-24T05:00:00+00:00",
    "flag": None,
}
INSTANCE_STATUS = obj({"status": {"enum": ["active", "completed", "cancelled"]}})
# On the events of an instance an admin recorded after starting it on paper
# (`started_at` in the past): when it was recorded.
RECORDED = {"recorded_at": TIME}
# The role an action was taken under in someone's stead (a Plh/Plt), on the envelope of
# the events it caused.
ACTING = obj(
    {
        "id": STRING,
        "role": STRING,
        "satker": STRING,
        "kind": {"enum": ["plh", "plt"]},
        "holder": nullable(STRING),
    }
)


@dataclass(frozen=True)
class EventType:
    type: str
    description: str
    kind: Literal["instance", "finding"]
    data_schema: Schema
    example_data: dict[str, Any]
    example_subject: str = "monitor:42"

    @property
    def schema(self) -> Schema:
        common = {"id": STRING, "type": {"const": self.type}, "occurred_at": TIME, "satker": STRING}
        if self.kind == "instance":
            fields = {
                **common,
                "instance_id": STRING,
                "sop": STRING,
                "task_id": nullable(STRING),
                "actor": STRING,
                "data": self.data_schema,
            }
            optional = {"acting_for": ACTING}
        else:
            fields = {**common, "subject": STRING, "data": self.data_schema}
            optional = {}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **obj(fields, optional),
        }

    @property
    def example(self) -> dict[str, Any]:
        envelope: dict[str, Any] = {
            "id": "evt_1042" if self.kind == "instance" else "fnd_317",
            "type": self.type,
            "occurred_at": EXAMPLE_TIME,
            "satker": "pn-tais",
        }
        if self.kind == "instance":
            task_id = self.example_data.get("after", {}).get("id")
            task_id = task_id or self.example_data.get("task_id")
            envelope |= {
                "instance_id": "0b6d1c1e-8f4e-4c8e-b1a4-6e2a0d1f9c30",
                "sop": "pemeliharaan-website",
                "task_id": task_id,
                "actor": "budi",
            }
        else:
            envelope["subject"] = self.example_subject
        return {**envelope, "data": copy.deepcopy(self.example_data)}


def _task_event(
    type: str,
    description: str,
    extra: dict[str, Schema],
    example: dict[str, Any],
    optional: dict[str, Schema] | None = None,
    **after: Any,
) -> EventType:
    """A task effect: the task before (null when it was just opened) and after."""
    schema = obj(
        {"before": nullable(TASK_STATE), "after": TASK_STATE, **extra},
        {**RECORDED, **(optional or {})},
    )
    before = None if type == "task.opened" else TASK_EXAMPLE
    data = {"before": before, "after": {**TASK_EXAMPLE, **after}, **example}
    return EventType(type, description, "instance", schema, data)


def _instance_event(
    type: str,
    description: str,
    extra: dict[str, Schema],
    example: dict[str, Any],
    after: str,
    optional: dict[str, Schema] | None = None,
) -> EventType:
    """An instance effect: its fields and the instance status before and after."""
    schema = obj(
        {**extra, "before": nullable(INSTANCE_STATUS), "after": INSTANCE_STATUS},
        {**RECORDED, **(optional or {})},
    )
    before = None if type == "instance.started" else {"status": "active"}
    data = {**example, "before": before, "after": {"status": after}}
    return EventType(type, description, "instance", schema, data)


def _finding(
    type: str, description: str, data: dict[str, Schema], example: dict[str, Any], subject: str
) -> EventType:
    return EventType(type, description, "finding", obj(data), example, subject)


ROLE_LEVEL = {"level": INTEGER, "to_role": STRING}
# Whom an escalation reached: the holders of `to_role` in the satker, then those acting
# in it (`acting`); empty when nobody (then a `role.unstaffed` finding follows). Absent
# on escalations from before people were known to Alur.
TO_PEOPLE = {
    "to_people": {
        "type": "array",
        "items": obj({"username": STRING, "acting": nullable(ACTING)}),
    }
}
MONITOR_CHECK = {
    "url": STRING,
    "status_code": nullable(INTEGER),
    "reason": nullable(STRING),
    "error": nullable(STRING),
    "latency_ms": nullable(NUMBER),
    "checked_at": TIME,
}
BACKUP = {
    "day": DATE,
    "reasons": {"type": "array", "items": obj({"code": STRING, "message": STRING})},
    "instance_id": nullable(STRING),
}
DONE: dict[str, Any] = {"status": "completed", "completed_at": EXAMPLE_TIME, "completed_by": "budi"}

EVENT_TYPES: tuple[EventType, ...] = (
    _instance_event(
        "instance.started", "A SOP was started (at `entry_point`).",
        {"entry_point": STRING}, {"entry_point": "s1"}, "active",
    ),
    _instance_event(
        "instance.completed", "The instance reached its end.", {}, {}, "completed"
    ),
    _instance_event(
        "instance.cancelled", "The instance was cancelled, with the reason given.",
        {"reason": STRING}, {"reason": "Dibatalkan: duplikat"}, "cancelled",
    ),
    _instance_event(
        "instance.due_soon", "The procedure-level standard time is about to run out.",
        {"due_at": TIME}, {"due_at": "2026-11-26T09:00:00+00:00"}, "active",
    ),
    _instance_event(
        "instance.overdue", "The procedure-level standard time has run out.",
        {"due_at": TIME}, {"due_at": "2026-11-24T01:00:00+00:00"}, "active",
    ),
    _instance_event(
        "instance.escalated", "An overdue instance was escalated to `to_role` (the people "
        "it reached: `to_people`).",
        ROLE_LEVEL, {"level": 1, "to_role": "kasubbag_ptip",
                     "to_people": [{"username": "siti", "acting": None}]},
        "active", TO_PEOPLE,
    ),
    _instance_event(
        "comment.added", "Someone commented on the instance (or one of its tasks); "
        "`kind` `tindak_lanjut` is a corrective action (the Monev SOP form lists them).",
        {"text": STRING, "task_id": nullable(STRING)},
        {"text": "Server sudah dinyalakan ulang.", "task_id": None, "kind": "note",
         "evidence": []}, "active",
        {"kind": {"enum": ["note", "tindak_lanjut"]},
         "evidence": {"type": "array", "items": STRING}},
    ),
    _instance_event(
        "file.attached", "An evidence file was attached to the instance (or one of its "
        "tasks); `sha256` names its content, which `GET /v1/files/{file_id}` serves.",
        {"file_id": STRING, "name": STRING, "media_type": STRING, "size": INTEGER,
         "sha256": STRING, "task_id": nullable(STRING)},
        {"file_id": "0b8f3f0e-6a4f-4c55-9a7e-3f1d2c4b5a69", "name": "berita-acara.pdf",
         "media_type": "application/pdf", "size": 48213,
         "sha256": "9f2c1e0b7d4a3c5e8f6a1b2d3c4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e",
         "task_id": None},
        "active",
    ),
    _instance_event(
        "instance.migrated", "An admin moved the instance to another version of its SOP; "
        "`moves` names the tasks that changed step.",
        {"from_version": INTEGER, "to_version": INTEGER,
         "moves": {"type": "array", "items": obj(
             {"task_id": STRING, "from_step": STRING, "to_step": STRING})}},
        {"from_version": 1, "to_version": 2,
         "moves": [{"task_id": TASK_EXAMPLE["id"], "from_step": "s1", "to_step": "s1a"}]},
        "active",
    ),
    _instance_event(
        "job.enqueued", "An automated step's job was sent to the workers.",
        {"job": STRING, "task_id": STRING},
        {"job": "sipp.check_backup", "task_id": TASK_EXAMPLE["id"]}, "active",
    ),
    _task_event("task.opened", "A step became a task in its lane.", {}, {}),
    _task_event(
        "task.completed", "A task was done; `outcome` is the branch taken at a decision.",
        {"outcome": nullable(STRING)}, {"outcome": "berhasil"}, **DONE, outcome="berhasil",
    ),
    _task_event("task.claimed", "Someone took the task.", {}, {}, assignee="budi"),
    _task_event(
        "task.assigned", "The task was handed to someone.",
        {"previous_assignee": nullable(STRING)}, {"previous_assignee": None}, assignee="siti",
    ),
    _task_event(
        "task.released", "The assignee gave the task back to the lane.",
        {"previous_assignee": STRING}, {"previous_assignee": "budi"},
    ),
    _task_event("task.cancelled", "The task closed with its instance.", {}, {},
                status="cancelled"),
    _task_event("task.due_soon", "The task's standard time is about to run out.", {}, {},
                warned_at=EXAMPLE_TIME),
    _task_event("task.overdue", "The task's standard time has run out.", {}, {},
                escalation_level=1),
    _task_event(
        "task.escalated", "An overdue task was escalated up `reports_to` to `to_role` (the "
        "people it reached: `to_people`, acting officials included).",
        ROLE_LEVEL,
        {"level": 2, "to_role": "sekretaris", "to_people": [
            {"username": "andi", "acting": {
                "id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "role": "sekretaris",
                "satker": "pn-tais", "kind": "plh", "holder": "rahmat"}}]},
        TO_PEOPLE, escalation_level=2,
    ),
    _task_event(
        "task.flagged", "An automated step gave up: a person has to do it.",
        {"reason": STRING}, {"reason": "sipp.check_backup failed 5 times"},
        flag="sipp.check_backup failed 5 times",
    ),
    _finding(
        "role.unstaffed", "Nobody holds the role in the satker, nor acts in it, when "
        "someone had to be told (`cause`: an escalation).",
        {"role": STRING, "cause": STRING, "instance_id": nullable(STRING),
         "sop": nullable(STRING), "task_id": nullable(STRING), "level": nullable(INTEGER)},
        {"role": "sekretaris", "cause": "escalation",
         "instance_id": "0b6d1c1e-8f4e-4c8e-b1a4-6e2a0d1f9c30", "sop": "pemeliharaan-website",
         "task_id": TASK_EXAMPLE["id"], "level": 2},
        "role:sekretaris",
    ),
    _finding(
        "backup.verified", "The day's SIPP backup and sync checked out (SOP 10).",
        BACKUP, {"day": "2026-11-24", "reasons": [], "instance_id": None}, "backup-check:7",
    ),
    _finding(
        "backup.failed", "The day's SIPP backup or sync failed a check (SOP 10).", BACKUP,
        {"day": "2026-11-24", "instance_id": None,
         "reasons": [{"code": "too_old", "message": "The newest backup is 3 days old"}]},
        "backup-check:8",
    ),
    _finding(
        "monitor.down", "A monitored website is down (after its retries).", MONITOR_CHECK,
        {"url": "https://pn-tais.go.id/", "status_code": 503, "reason": "status",
         "error": None, "latency_ms": 412, "checked_at": EXAMPLE_TIME},
        "monitor:42",
    ),
    _finding(
        "monitor.up", "A website that was down is up again (after its confirmations).",
        MONITOR_CHECK,
        {"url": "https://pn-tais.go.id/", "status_code": 200, "reason": None,
         "error": None, "latency_ms": 120, "checked_at": EXAMPLE_TIME},
        "monitor:42",
    ),
    _finding(
        "content.stale", "A website's content is older than its freshness limit.",
        {"url": STRING, "freshness_days": INTEGER, "content_updated_at": nullable(TIME)},
        {"url": "https://pn-tais.go.id/", "freshness_days": 30,
         "content_updated_at": "2026-09-01T03:00:00+00:00"},
        "monitor:42",
    ),
    _finding(
        "certificate.expiring", "A website's TLS certificate expires within a threshold.",
        {"url": STRING, "not_after": TIME, "days_left": INTEGER, "threshold_days": INTEGER,
         "verification_error": nullable(STRING)},
        {"url": "https://pn-tais.go.id/", "not_after": "2026-12-08T00:00:00+00:00",
         "days_left": 13, "threshold_days": 14, "verification_error": None},
        "monitor:42",
    ),
    _finding(
        "domain.expiring", "A website's domain registration expires within a threshold.",
        {"domain": STRING, "expires_at": TIME, "days_left": INTEGER, "threshold_days": INTEGER},
        {"domain": "pn-tais.go.id", "expires_at": "2026-12-15T04:30:00+00:00",
         "days_left": 20, "threshold_days": 21},
        "monitor:42",
    ),
    _finding(
        "renewal.due", "A service (hosting, domain, connection) is due for renewal; a SOP "
        "05 instance was started for it.",
        {"service": STRING, "name": STRING, "provider": nullable(STRING), "due_date": DATE,
         "days_left": INTEGER, "instance_id": STRING},
        {"service": "domain", "name": "pn-tais.go.id", "provider": "PANDI",
         "due_date": "2026-12-15", "days_left": 21,
         "instance_id": "0b6d1c1e-8f4e-4c8e-b1a4-6e2a0d1f9c30"},
        "renewal:3",
    ),
    _finding(
        "sop_review.opened", "A SOP's yearly review fell due in the satker; its Kasubbag "
        "decides to keep or revise it (`/v1/sop-reviews/{review_id}`, with the figures).",
        {"review_id": STRING, "sop": STRING, "sop_number": INTEGER, "sop_title": STRING,
         "version": INTEGER, "due_on": DATE, "on_time_percent": nullable(NUMBER)},
        {"review_id": "3e0b9c1a-6d2f-4b7e-9a8c-1f2e3d4c5b6a", "sop": "gangguan-jaringan",
         "sop_number": 7, "sop_title": "Penanganan Gangguan Jaringan Komunikasi Data",
         "version": 1,
         "due_on": "2026-12-04", "on_time_percent": 87.5},
        "sop_review:3e0b9c1a-6d2f-4b7e-9a8c-1f2e3d4c5b6a",
    ),
    _finding(
        "sop_review.completed", "The Kasubbag decided a SOP review: `tetap` (keep the SOP "
        "as it is) or `revisi` (revise it).",
        {"review_id": STRING, "sop": STRING, "version": INTEGER, "due_on": DATE,
         "decision": {"enum": ["tetap", "revisi"]}, "note": nullable(STRING),
         "completed_by": STRING, "acting_for": nullable(ACTING)},
        {"review_id": "3e0b9c1a-6d2f-4b7e-9a8c-1f2e3d4c5b6a", "sop": "gangguan-jaringan",
         "version": 1, "due_on": "2026-12-04", "decision": "revisi",
         "note": "Waktu langkah 3 terlalu singkat", "completed_by": "rahmat",
         "acting_for": None},
        "sop_review:3e0b9c1a-6d2f-4b7e-9a8c-1f2e3d4c5b6a",
    ),
    _finding(
        "webhook.subscription_disabled", "A webhook subscription was disabled: its "
        "deliveries failed for too long, or the receiver answered 410 Gone.",
        {"subscription_id": STRING, "url": STRING, "reason": STRING,
         "failing_since": nullable(TIME)},
        {"subscription_id": "9a3e4b8c-1d2f-4e5a-8b6c-7d8e9f0a1b2c",
         "url": "https://hooks.example.org/alur", "reason": "failing for 5 days",
         "failing_since": "2026-11-19T02:00:00+00:00"},
        "webhook-subscription:9a3e4b8c-1d2f-4e5a-8b6c-7d8e9f0a1b2c",
    ),
)  # fmt: skip
BY_TYPE = {event.type: event for event in EVENT_TYPES}
PREFIXES = {event.type.split(".", 1)[0] for event in EVENT_TYPES}


class WebhookEventTypeUnknown(AlurError):
    code = "webhook_event_type_unknown"
    status = 422
    title = "Unknown event type"


_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")


def check_patterns(patterns: list[str]) -> list[str]:
    """`*`, `<prefix>.*` or an exact type, each naming a known event type (a
    typo would otherwise subscribe to nothing, silently)."""
    for pattern in patterns:
        known = (
            pattern == "*"
            or (pattern.endswith(".*") and pattern[:-2] in PREFIXES)
            or pattern in BY_TYPE
        )
        if not _PATTERN.match(pattern) or not known:
            raise WebhookEventTypeUnknown(
                f"{pattern!r} is not an event type, a `prefix.*` wildcard or `*`; "
                f"see GET /v1/webhook-event-types",
                extra={"event_type": pattern},
            )
    return list(dict.fromkeys(patterns))


def matches(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
