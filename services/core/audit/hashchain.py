"""Append hash-chained audit events (and their outbox rows); verify a chain.

Each event's hash covers its own fields and the previous event's hash; the instance row
keeps the count and the newest hash, so editing, inserting or deleting any event,
the newest included, breaks verification.

Writing and verifying hash the same canonical form (`event_hash`), and that form is the
one the database gives back: what verification reads is what was hashed. Times are
hashed in UTC to the microsecond (both backends keep the instant, neither the offset);
`data` is JSON with sorted keys (neither backend keeps key order) whose values are
strings, integers, booleans and nulls, which both backends keep exactly (PostgreSQL's
`jsonb` rewrites numbers such as `1e16` or `-0.0`, but event data holds no floats).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from services.core.audit.models import AuditEventRecord

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class NewEvent:
    type: str
    actor: str
    actor_name: str | None
    occurred_at: datetime
    task_id: str | None
    data: dict[str, Any]
    # The role the actor held in someone's stead to do this (`ActingRole.audit()`).
    acting_for: dict[str, Any] | None = None


def event_hash(
    *,
    instance_id: str,
    seq: int,
    type: str,
    actor: str,
    actor_name: str | None,
    occurred_at: datetime,
    task_id: str | None,
    data: dict[str, Any] | orjson.Fragment,
    prev_hash: str,
    acting_for: dict[str, Any] | None = None,
) -> str:
    """SHA-256 of the event's canonical form: its fields as JSON with sorted keys, the
    time in UTC (`canonical_time`). `data` may come already serialized that way
    (`canonical_data`): the same bytes, not made twice.

    `acting_for` came later: it is part of the document only when set, so the events
    written before it existed keep their hashes."""
    return _digest(
        instance_id=instance_id,
        seq=seq,
        type=type,
        actor=actor,
        actor_name=actor_name,
        occurred_at=canonical_time(occurred_at),
        task_id=task_id,
        data=data,
        prev_hash=prev_hash,
        acting_for=acting_for,
    )


def canonical_time(moment: datetime) -> str:
    """A time as an event's hash covers it: the instant in UTC, to the microsecond, which
    is what both backends store (an offset given with it is not kept)."""
    if moment.utcoffset() is None:
        raise ValueError("an audit event's time needs a timezone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _digest(
    *,
    occurred_at: str,
    data: dict[str, Any] | orjson.Fragment,
    acting_for: dict[str, Any] | None,
    **fields: Any,
) -> str:
    document = {**fields, "occurred_at": occurred_at, "data": data}
    if acting_for is not None:
        document["acting_for"] = acting_for
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def canonical_data(data: dict[str, Any]) -> orjson.Fragment:
    """An event's data as the JSON its hash covers (sorted keys), ready to be embedded
    verbatim wherever orjson writes it (the database's JSON columns, the hash document)."""
    return orjson.Fragment(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def chain(
    instance_id: str, start_seq: int, prev_hash: str, events: Sequence[NewEvent]
) -> list[dict[str, Any]]:
    """Rows for `events`, numbered and hashed after the event `start_seq - 1`. A row's
    `data` is its JSON, serialized once for the hash and then written as it is."""
    rows = []
    for offset, event in enumerate(events):
        seq = start_seq + offset
        data = canonical_data(event.data)
        digest = event_hash(
            instance_id=instance_id,
            seq=seq,
            type=event.type,
            actor=event.actor,
            actor_name=event.actor_name,
            occurred_at=event.occurred_at,
            task_id=event.task_id,
            data=data,
            prev_hash=prev_hash,
            acting_for=event.acting_for,
        )
        rows.append(
            {
                "instance_id": instance_id,
                "seq": seq,
                "type": event.type,
                "actor": event.actor,
                "actor_name": event.actor_name,
                "occurred_at": event.occurred_at.astimezone(UTC),
                "task_id": event.task_id,
                "data": data,
                "acting_for": event.acting_for,
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev_hash = digest
    return rows


@dataclass
class ChainReport:
    instance_id: str
    valid: bool = True
    events: int = 0
    problems: list[str] = field(default_factory=list)


def verify_chain(
    instance_id: str, events: Sequence[AuditEventRecord], event_count: int, head_hash: str
) -> ChainReport:
    report = ChainReport(instance_id=instance_id, events=len(events))
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            report.problems.append(f"event #{expected_seq} is missing (found #{event.seq} next)")
        if event.prev_hash != prev:
            report.problems.append(f"event #{event.seq} does not follow the event before it")
        recomputed = event_hash(
            instance_id=event.instance_id,
            seq=event.seq,
            type=event.type,
            actor=event.actor,
            actor_name=event.actor_name,
            occurred_at=event.occurred_at,
            task_id=event.task_id,
            data=event.data,
            prev_hash=event.prev_hash,
            acting_for=event.acting_for,
        )
        if recomputed != event.hash and not _hashed_at_its_given_offset(event):
            report.problems.append(f"event #{event.seq} ({event.type}) was altered")
        prev = event.hash
    if len(events) != event_count or prev != (head_hash or GENESIS_HASH):
        report.problems.append(
            f"the instance records {event_count} events ending in {head_hash[:12]}…, "
            f"the trail holds {len(events)} ending in {prev[:12]}…: events were removed or added"
        )
    report.valid = not report.problems
    return report


# Whole-minute UTC offsets other than UTC itself, the ones a client may give a time in.
_OFFSETS = tuple(timezone(timedelta(minutes=m)) for m in range(-24 * 60 + 1, 24 * 60) if m != 0)


def _hashed_at_its_given_offset(event: AuditEventRecord) -> bool:
    """Whether `event` is one of a start recorded after the fact (`recorded_at`), written
    before times were hashed in UTC: its time was hashed in the offset its client gave
    (`+07:00`), which the database did not keep. Every rendering tried names the
    instant stored, so accepting one hides no edit."""
    if "recorded_at" not in event.data:
        return False
    data = canonical_data(event.data)
    fields: dict[str, Any] = {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "actor_name": event.actor_name,
        "task_id": event.task_id,
        "prev_hash": event.prev_hash,
    }
    return any(
        _digest(
            **fields,
            occurred_at=event.occurred_at.astimezone(zone).isoformat(timespec="microseconds"),
            data=data,
            acting_for=event.acting_for,
        )
        == event.hash
        for zone in _OFFSETS
    )
