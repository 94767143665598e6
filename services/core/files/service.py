"""Use cases of evidence files: attach one to an instance, list them, read one back, and
check the file ids a transition names as its evidence.

Attaching is a command on the instance (`AttachFile`): the same visibility, the same
optimistic concurrency, and an audit event `file.attached` whose data holds the file's
SHA-256, so the instance's hash chain covers which content was attached.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from services.core.engine.errors import InstanceClosed
from services.core.engine.state import Actor, AttachedFile, AttachFile, Command
from services.core.errors import AlurError, NotFound
from services.core.files.models import EvidenceFileRecord
from services.core.instances import service as instances
from services.core.instances.service import Applied, InstanceView
from services.core.settings import FileSettings
from services.core.shared import Services

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NAME_LIMIT = 255


class FileNotFound(NotFound):
    code = "file_not_found"
    title = "No such file"


class FileTooLarge(AlurError):
    code = "file_too_large"
    status = 413
    title = "The file is larger than accepted"


class InstanceFilesFull(AlurError):
    code = "instance_files_full"
    status = 413
    title = "The instance holds as many bytes of evidence as accepted"


class UnknownEvidenceFile(AlurError):
    code = "unknown_evidence_file"
    status = 422
    title = "The evidence names a file that is not attached to this instance"


@dataclass(frozen=True)
class Upload:
    """A file received whole into `path` (a temporary file), with what was read of it."""

    path: Path
    name: str
    media_type: str
    size: int
    sha256: str


def clean_name(raw: str) -> str:
    """The file name a client sent, as shown and offered for download: its last path
    component (browsers on Windows send `C:\\fakepath\\…`), without control characters,
    at most 255 characters (the extension kept)."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    if len(name) > NAME_LIMIT:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: NAME_LIMIT - len(extension) - 1] + "." + extension
        else:
            name = name[:NAME_LIMIT]
    return name or "berkas"


def is_file_id(reference: str) -> bool:
    return _UUID.fullmatch(reference) is not None


async def used_bytes(session: AsyncSession, instance_id: str) -> int:
    total = await session.scalar(
        select(sa.func.coalesce(sa.func.sum(col(EvidenceFileRecord.size)), 0)).where(
            col(EvidenceFileRecord.instance_id) == instance_id
        )
    )
    return int(total or 0)


async def check_room(
    session: AsyncSession,
    services: Services,
    limits: FileSettings,
    actor: Actor,
    instance_id: str,
    size: int,
) -> None:
    """The instance is one the caller may see, and has room for `size` more bytes."""
    # Read first: a caller who may not see the instance learns nothing of its files.
    view = await instances.get_view(session, services, actor, instance_id)
    if not view.state.is_active:
        raise InstanceClosed(instance_id, view.state.status)
    used = await used_bytes(session, instance_id)
    if used + size > limits.max_instance_bytes:
        raise InstanceFilesFull(
            f"The instance holds {used} bytes of evidence; {size} more would pass "
            f"the {limits.max_instance_bytes} accepted",
            extra={"used_bytes": used, "limit_bytes": limits.max_instance_bytes},
        )


async def attach(
    session: AsyncSession,
    services: Services,
    limits: FileSettings,
    actor: Actor,
    instance_id: str,
    upload: Upload,
    *,
    task_id: str | None,
    now: datetime,
) -> tuple[EvidenceFileRecord, Applied]:
    """Record a file whose content is in the store already, with its audit event.

    The caller stores the content first, outside the transaction (on SQLite a writing
    transaction holds the database's one write lock), so a committed row always has its
    content; a transaction that fails after the write leaves content that no row names,
    which is harmless."""
    await check_room(session, services, limits, actor, instance_id, upload.size)
    file = AttachedFile(
        id=services.new_id(),
        name=upload.name,
        media_type=upload.media_type,
        size=upload.size,
        sha256=upload.sha256,
    )

    def command(_view: InstanceView, acting: Actor, _ids: list[str]) -> Command:
        return AttachFile(actor=acting, file=file, task_id=task_id)

    applied = await instances.apply(
        session, services, actor, instance_id, command, if_match=None, now=now
    )
    record = EvidenceFileRecord(
        id=file.id,
        instance_id=instance_id,
        satker_id=applied.view.record.satker_id,
        task_id=task_id,
        name=file.name,
        media_type=file.media_type,
        size=file.size,
        sha256=file.sha256,
        uploaded_by=actor.sub,
        uploaded_at=now,
    )
    session.add(record)
    await session.flush()
    return record, applied


async def files_of(
    session: AsyncSession, services: Services, actor: Actor, instance_id: str
) -> Sequence[EvidenceFileRecord]:
    await instances.get_view(session, services, actor, instance_id)
    rows = await session.scalars(
        select(EvidenceFileRecord)
        .where(col(EvidenceFileRecord.instance_id) == instance_id)
        .order_by(col(EvidenceFileRecord.uploaded_at), col(EvidenceFileRecord.id))
    )
    return rows.all()


async def get(
    session: AsyncSession, services: Services, actor: Actor, file_id: str
) -> EvidenceFileRecord:
    """The file, if the caller may read its instance (another satker's file is reported
    exactly like a missing one)."""
    record = await session.get(EvidenceFileRecord, file_id) if is_file_id(file_id) else None
    if record is not None:
        directory = await services.directory(session, actor.satker)
        if record.satker_id in directory.visible_from(actor.satker):
            return record
    raise FileNotFound(f"No file {file_id[:40]!r} among the ones you can read")


async def require_attached(
    session: AsyncSession, instance_id: str, evidence: Iterable[str]
) -> None:
    """Every file id among `evidence` (references of the UUID form) names a file of this
    instance; other references (URLs, `backup-check:…`) pass as they are."""
    wanted = {reference for reference in evidence if is_file_id(reference)}
    if not wanted:
        return
    found = set(
        (
            await session.scalars(
                select(col(EvidenceFileRecord.id)).where(
                    col(EvidenceFileRecord.instance_id) == instance_id,
                    col(EvidenceFileRecord.id).in_(wanted),
                )
            )
        ).all()
    )
    missing = sorted(wanted - found)
    if missing:
        raise UnknownEvidenceFile(
            f"No file {missing[0]!r} is attached to instance {instance_id!r}; attach it "
            f"first (POST /v1/instances/{instance_id}/files)",
            extra={"file_ids": missing},
        )
