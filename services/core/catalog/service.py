"""Use cases of the catalog: sync the files into the database, read definitions back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.catalog import repository
from services.core.catalog.models import RoleRecord, SopDefinitionRecord
from services.core.engine.definition import (
    DEFAULT_REVIEW_MONTHS,
    Catalog,
    Role,
    SopDefinition,
)
from services.core.errors import AlurError, NotFound


class CatalogVersionConflict(AlurError):
    code = "catalog_version_conflict"
    status = 409
    title = "A catalog version was changed in place"


class SopNotFound(NotFound):
    code = "sop_not_found"
    title = "No such SOP"


class SopVersionNotFound(NotFound):
    code = "sop_version_not_found"
    title = "No such SOP version"


@dataclass
class SyncReport:
    inserted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    current: dict[str, int] = field(default_factory=dict)


# Fields added to SopDefinition after versions were stored, with the value that means
# "not said": left out of the stored content while they hold it, so a version stored
# before the field existed keeps its hash (a changed hash is refused at startup as a
# version changed in place, `CatalogVersionConflict`).
_ADDED_FIELDS: dict[str, object] = {
    "effective_date": None,
    "review_months": DEFAULT_REVIEW_MONTHS,
}


def stored_content(definition: SopDefinition) -> dict[str, Any]:
    """The definition as stored and hashed."""
    content = definition.model_dump(mode="json")
    for name, unsaid in _ADDED_FIELDS.items():
        if content.get(name) == unsaid:
            del content[name]
    return content


def content_hash(definition: SopDefinition) -> str:
    canonical = orjson.dumps(stored_content(definition), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def sync_catalog(session: AsyncSession, catalog: Catalog, now: datetime) -> SyncReport:
    """Store every SOP version of `catalog` not stored yet and make the newest current.

    A stored (code, version) never changes: the same version with other content is
    refused, so an instance pinned to that version always runs what it started with.
    """
    report = SyncReport()
    conflicts: list[str] = []
    for definition in catalog.sops:
        label = f"{definition.code} v{definition.version}"
        digest = content_hash(definition)
        stored = await repository.find_definition(session, definition.code, definition.version)
        if stored is None:
            stored = await _insert(session, definition, digest, now)
            if stored.content_hash == digest:
                report.inserted.append(label)
        elif stored.content_hash == digest:
            report.unchanged.append(label)
        if stored.content_hash != digest:
            conflicts.append(
                f"SOP {definition.code!r} version {definition.version} is already loaded with "
                f"different content; give the changed definition a new `version` "
                f"(versions loaded: {await repository.versions_of(session, definition.code)})"
            )
    if conflicts:
        raise CatalogVersionConflict(" ; ".join(conflicts), extra={"conflicts": conflicts})

    for code in sorted({definition.code for definition in catalog.sops}):
        report.current[code] = await repository.make_newest_current(session, code)
    await _sync_roles(session, catalog.roles)
    await session.flush()
    return report


async def _insert(
    session: AsyncSession, definition: SopDefinition, digest: str, now: datetime
) -> SopDefinitionRecord:
    record = SopDefinitionRecord(
        code=definition.code,
        version=definition.version,
        number=definition.number,
        title=definition.title,
        content=stored_content(definition),
        content_hash=digest,
        loaded_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # Another replica stored the same version a moment ago: compare with theirs.
        theirs = await repository.find_definition(session, definition.code, definition.version)
        assert theirs is not None
        return theirs
    return record


async def _sync_roles(session: AsyncSession, roles: tuple[Role, ...]) -> None:
    for role in roles:
        await session.merge(
            RoleRecord(
                id=role.id,
                name=role.name,
                reports_to=role.reports_to,
                external=role.external,
                description=role.description,
            )
        )


async def get_definition(
    session: AsyncSession, code: str, version: int | None = None
) -> SopDefinition:
    """The definition of `code` (the current version unless `version` is given).

    `code` may also be the SOP's number ("05" or "5"), as staff call them.
    """
    if code.isascii() and code.isdigit() and len(code) <= 9:
        code = await repository.code_for_number(session, int(code)) or code
    record = await repository.find_definition(session, code, version)
    if record is None:
        if version is not None and await repository.versions_of(session, code):
            raise SopVersionNotFound(
                f"SOP {code!r} has no version {version}",
                extra={"versions": await repository.versions_of(session, code)},
            )
        raise SopNotFound(f"No SOP with code {code!r}")
    return SopDefinition.model_validate(record.content)


async def list_definitions(session: AsyncSession) -> list[tuple[SopDefinitionRecord, list[int]]]:
    """Every current definition with all its stored versions."""
    records = await repository.current_definitions(session)
    versions = await repository.all_versions(session)
    return [(record, versions[record.code]) for record in records]


async def roles_by_id(session: AsyncSession) -> dict[str, Role]:
    return {
        record.id: Role(
            id=record.id,
            name=record.name,
            reports_to=record.reports_to,
            external=record.external,
            description=record.description,
        )
        for record in await repository.all_roles(session)
    }
