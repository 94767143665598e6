"""A stored (code, version) is immutable; a new version becomes current, old ones stay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.catalog import service
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import CatalogVersionConflict
from services.core.engine.definition import Catalog
from services.core.settings import Settings

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
CODE = "monitoring-sinkronisasi-backup-sipp"


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    return load_catalog(settings.catalog.path)


def _with_sop_changed(catalog: Catalog, version: int, title: str) -> Catalog:
    sops = tuple(
        sop.model_copy(update={"version": version, "title": title}) if sop.code == CODE else sop
        for sop in catalog.sops
    )
    return catalog.model_copy(update={"sops": sops})


async def test_sync_is_idempotent(db_session: AsyncSession, catalog: Catalog) -> None:
    report = await service.sync_catalog(db_session, catalog, NOW)
    assert report.inserted == []
    assert len(report.unchanged) == len(catalog.sops)


async def test_same_version_with_other_content_is_refused(
    db_session: AsyncSession, catalog: Catalog
) -> None:
    edited = _with_sop_changed(catalog, version=1, title="Judul yang diubah")
    with pytest.raises(CatalogVersionConflict) as raised:
        await service.sync_catalog(db_session, edited, NOW)
    assert f"SOP {CODE!r} version 1 is already loaded with different content" in str(
        raised.value.detail
    )
    assert raised.value.status == 409


async def test_new_version_becomes_current_and_old_stays_readable(
    db_session: AsyncSession, catalog: Catalog
) -> None:
    original = catalog.sop(CODE)
    newer = _with_sop_changed(catalog, version=2, title="Monitoring Sinkronisasi (rev. 2)")
    report = await service.sync_catalog(db_session, newer, NOW)
    assert report.inserted == [f"{CODE} v2"]
    assert report.current[CODE] == 2

    current = await service.get_definition(db_session, CODE)
    assert (current.version, current.title) == (2, "Monitoring Sinkronisasi (rev. 2)")
    old = await service.get_definition(db_session, CODE, version=1)
    assert old == original
    listed = {
        record.code: versions for record, versions in await service.list_definitions(db_session)
    }
    assert listed[CODE] == [1, 2]

    # Loading the old catalog again (a replica not yet upgraded) does not demote v2.
    report = await service.sync_catalog(db_session, catalog, NOW)
    assert report.current[CODE] == 2
