"""Inbox rows as people read them, for `/v1/tasks` and the heads' overview."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.api.instances.schemas import InboxTask, inbox_task
from services.core.instances.queries import InboxRow
from services.core.satkers.service import SatkerDirectory
from services.core.shared import Services


async def inbox_tasks(
    services: Services,
    session: AsyncSession,
    directory: SatkerDirectory,
    rows: Sequence[InboxRow],
    now: datetime,
) -> list[InboxTask]:
    """Each row with its step from its SOP version and its lateness on its satker's
    working calendar (both cached per process)."""
    items = []
    for row in rows:
        task = row.task
        items.append(
            inbox_task(
                task,
                instance_title=row.instance_title,
                definition=await services.definition(session, task.sop_code, row.sop_version),
                roles=services.roles,
                calendar=await services.calendars.get(session, directory.get(task.satker_id)),
                now=now,
            )
        )
    return items
