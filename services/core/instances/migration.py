"""Use case: move a running instance to another version of its SOP (a dry run shows
what would happen to each task; see `services.core.engine.migration`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.audit import hashchain
from services.core.engine import migration
from services.core.engine.migration import MigrationPlan
from services.core.engine.state import ADMIN_ROLE, Actor
from services.core.instances import repository
from services.core.instances.models import InstanceRecord
from services.core.instances.service import (
    Applied,
    ConcurrentModification,
    InstanceView,
    decision_events,
    get_view,
)
from services.core.satkers.service import SatkerNotFound
from services.core.shared import Services


@dataclass(frozen=True)
class Migration:
    plan: MigrationPlan
    # None for a dry run.
    applied: Applied | None


async def migrate(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    instance_id: str,
    *,
    version: int,
    step_map: Mapping[str, str],
    accept_lane_changes: bool,
    dry_run: bool,
    now: datetime,
) -> Migration:
    view = await get_view(session, services, actor, instance_id)
    record, state, old = view.record, view.state, view.definition
    directory = await services.directory(session, actor.satker)
    own = dataclasses.replace(
        actor, roles=directory.effective_roles(actor.roles, actor.satker, record.satker_id)
    )
    if not (own.is_worker or ADMIN_ROLE in own.roles):
        raise migration.MigrationForbidden(
            "only an admin of the instance's satker (or a court above it) may migrate it"
        )
    new = await services.definition(session, record.sop_code, version)
    planned = migration.plan(state, old, new, step_map, accept_lane_changes=accept_lane_changes)
    if dry_run:
        return Migration(planned, None)
    decision = migration.migrate(
        state, old, new, own, step_map, accept_lane_changes=accept_lane_changes
    )
    rows = hashchain.chain(
        record.id,
        record.event_count + 1,
        record.head_hash,
        decision_events(decision, state, actor, now),
    )
    event_count, head_hash = rows[-1]["seq"], rows[-1]["hash"]
    if not await repository.save_migration(
        session, new, state, decision.state, events=rows, event_count=event_count,
        head_hash=head_hash,
    ):  # fmt: skip
        raise ConcurrentModification(
            "The instance was changed by another request at the same time; reload and retry"
        )
    after = decision.state
    record = dataclasses.replace(
        record,
        sop_version=after.sop_version,
        **repository.instance_changes(after, event_count, head_hash),
    )
    return Migration(planned, Applied(InstanceView(record, after, new), ()))


async def candidates(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    sop_code: str,
    from_version: int,
    *,
    satker: str | None,
    limit: int,
) -> tuple[list[str], int]:
    """The active instances of `sop_code` at `from_version` the actor may see (in
    `satker` and below, when given), oldest first: up to `limit` ids, and how many in all."""
    directory = await services.directory(session, actor.satker)
    scope = directory.visible_from(satker or actor.satker)
    if satker is not None and satker not in directory.visible_from(actor.satker):
        raise SatkerNotFound(f"No satker {satker!r} among the ones you can act for")
    where = (
        col(InstanceRecord.sop_code) == sop_code,
        col(InstanceRecord.sop_version) == from_version,
        col(InstanceRecord.status) == "active",
        col(InstanceRecord.satker_id).in_(sorted(scope)),
    )
    total = await session.scalar(select(sa.func.count()).select_from(InstanceRecord).where(*where))
    ids = await session.scalars(
        select(col(InstanceRecord.id))
        .where(*where)
        .order_by(col(InstanceRecord.started_at), col(InstanceRecord.id))
        .limit(limit)
    )
    return list(ids.all()), int(total or 0)
