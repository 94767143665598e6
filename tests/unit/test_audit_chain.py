"""The audit chain's canonical form, without a database: what is hashed is what is
read back, times at any offset included."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from services.core.audit.hashchain import (
    GENESIS_HASH,
    NewEvent,
    canonical_time,
    chain,
    verify_chain,
)
from services.core.audit.models import AuditEventRecord

WIB = timezone(timedelta(hours=7))
STARTED = datetime(2026, 12, 1, 8, 0, tzinfo=WIB)  # 01:00 UTC
RECORDED = {"recorded_at": "2026-12-03T02:00:00+00:00"}


def _stored(rows: list[dict[str, Any]]) -> list[AuditEventRecord]:
    """The rows as the database gives them back: times in UTC, data parsed."""
    return [
        AuditEventRecord(
            **{
                **row,
                "occurred_at": row["occurred_at"].astimezone(UTC),
                "data": orjson.loads(orjson.dumps(row["data"])),
            }
        )
        for row in rows
    ]


def _event(occurred_at: datetime, data: dict[str, Any]) -> NewEvent:
    return NewEvent(
        type="instance.started",
        actor="budi",
        actor_name="Budi",
        occurred_at=occurred_at,
        task_id=None,
        data=data,
    )


def _verify(events: list[AuditEventRecord]) -> list[str]:
    return verify_chain("i-1", events, len(events), events[-1].hash).problems


def test_a_time_given_at_an_offset_verifies_as_stored_in_utc() -> None:
    rows = chain("i-1", 1, GENESIS_HASH, [_event(STARTED, {**RECORDED, "entry_point": "s1"})])
    assert rows[0]["occurred_at"] == STARTED
    assert _verify(_stored(rows)) == []


@pytest.mark.parametrize("minutes", [0, 7 * 60, -(3 * 60 + 30), 14 * 60, -(23 * 60 + 59)])
def test_the_canonical_time_is_the_instant_whatever_its_offset(minutes: int) -> None:
    moment = STARTED.astimezone(timezone(timedelta(minutes=minutes)))
    assert canonical_time(moment) == "2026-12-01T01:00:00.000000+00:00"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        canonical_time(datetime(2026, 12, 1, 8, 0))


def _hashed_before_utc(event: AuditEventRecord, offset: timezone) -> str:
    """The hash as written before times were hashed in UTC: at the offset given."""
    document = {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "actor_name": event.actor_name,
        "occurred_at": event.occurred_at.astimezone(offset).isoformat(timespec="microseconds"),
        "task_id": event.task_id,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _written_before_utc(data: dict[str, Any], offset: timezone) -> AuditEventRecord:
    (event,) = _stored(chain("i-1", 1, GENESIS_HASH, [_event(STARTED, data)]))
    event.hash = _hashed_before_utc(event, offset)
    return event


@pytest.mark.parametrize("minutes", [7 * 60, 9 * 60, -(4 * 60 + 30), 23 * 60 + 59])
def test_a_backdated_start_hashed_at_its_offset_before_still_verifies(minutes: int) -> None:
    event = _written_before_utc(
        {**RECORDED, "entry_point": "s1"}, timezone(timedelta(minutes=minutes))
    )
    assert _verify([event]) == []


def test_the_old_offset_is_tried_only_for_backdated_starts() -> None:
    # Only a start recorded after the fact was ever hashed at a client's offset.
    event = _written_before_utc({"entry_point": "s1"}, WIB)
    assert _verify([event]) == ["event #1 (instance.started) was altered"]


@pytest.mark.parametrize(
    "edit",
    [
        {"occurred_at": STARTED + timedelta(minutes=1)},  # another instant
        {"data": {**RECORDED, "entry_point": "s2"}},
        {"actor": "mallory"},
    ],
)
def test_an_edit_of_an_event_hashed_at_its_offset_is_found(edit: dict[str, Any]) -> None:
    event = _written_before_utc({**RECORDED, "entry_point": "s1"}, WIB)
    for name, value in edit.items():
        setattr(event, name, value)
    assert _verify([event]) == ["event #1 (instance.started) was altered"]
