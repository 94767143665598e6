"""`acting_for` in the hash-chained audit trail: covered by the hash when set, absent from
it otherwise, so trails written before it existed still verify."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from services.core.audit.hashchain import GENESIS_HASH, NewEvent, chain, event_hash, verify_chain
from services.core.audit.models import AuditEventRecord

AT = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ACTING = {
    "id": "a-1",
    "role": "kasubbag_ptip",
    "satker": "pn-tais",
    "kind": "plh",
    "holder": "rahmat",
}


def _hash_before_acting_for_existed(row: dict[str, Any]) -> str:
    """The event hash as it was computed before `acting_for` (its document, verbatim)."""
    document = {
        "instance_id": row["instance_id"],
        "seq": row["seq"],
        "type": row["type"],
        "actor": row["actor"],
        "actor_name": row["actor_name"],
        "occurred_at": row["occurred_at"].isoformat(timespec="microseconds"),
        "task_id": row["task_id"],
        "data": orjson.loads(orjson.dumps(row["data"])),
        "prev_hash": row["prev_hash"],
    }
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _records(rows: list[dict[str, Any]]) -> list[AuditEventRecord]:
    return [
        AuditEventRecord(**{**row, "data": orjson.loads(orjson.dumps(row["data"]))}) for row in rows
    ]


def _events() -> list[NewEvent]:
    own = NewEvent(
        type="task.completed", actor="budi", actor_name="Budi", occurred_at=AT,
        task_id="t-1", data={"outcome": None},
    )  # fmt: skip
    stand_in = NewEvent(
        type="task.completed", actor="andi", actor_name="Andi", occurred_at=AT,
        task_id="t-2", data={"outcome": None}, acting_for=ACTING,
    )  # fmt: skip
    return [own, stand_in]


def test_events_without_acting_for_keep_the_hash_they_always_had() -> None:
    rows = chain("i-1", 1, GENESIS_HASH, _events())
    assert rows[0]["acting_for"] is None
    assert rows[0]["hash"] == _hash_before_acting_for_existed(rows[0])
    # With acting_for the document differs, so the hash does.
    assert rows[1]["hash"] != _hash_before_acting_for_existed(rows[1])


def test_a_chain_with_acting_events_verifies_and_an_edit_of_acting_for_is_found() -> None:
    rows = chain("i-1", 1, GENESIS_HASH, _events())
    records = _records(rows)
    assert verify_chain("i-1", records, 2, rows[-1]["hash"]).valid

    # Rewriting whom the Plh stood in for, or dropping the fact, breaks the chain.
    for edit in ({**ACTING, "holder": "someone-else"}, None):
        tampered = _records(rows)
        tampered[1].acting_for = edit
        report = verify_chain("i-1", tampered, 2, rows[-1]["hash"])
        assert report.problems == ["event #2 (task.completed) was altered"]
    # Claiming an action was taken as acting when it was not is found as well.
    claimed = _records(rows)
    claimed[0].acting_for = ACTING
    assert not verify_chain("i-1", claimed, 2, rows[-1]["hash"]).valid


def test_the_hash_covers_acting_for_as_given() -> None:
    base: dict[str, Any] = {
        "instance_id": "i-1", "seq": 1, "type": "task.completed", "actor": "andi",
        "actor_name": None, "occurred_at": AT, "task_id": "t-1", "data": {},
        "prev_hash": GENESIS_HASH,
    }  # fmt: skip
    assert event_hash(**base) == event_hash(**base, acting_for=None)
    assert event_hash(**base, acting_for=ACTING) != event_hash(
        **base, acting_for={**ACTING, "kind": "plt"}
    )
