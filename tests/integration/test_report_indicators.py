"""SAKIP figures against the seeded activity, counted again here month by month."""

from __future__ import annotations

import csv
import io
from collections import Counter
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from services.core.settings import Settings
from tests.report_seed import Seeded, seeded_satker
from tests.support import TokenFactory, serving

WIB = ZoneInfo("Asia/Jakarta")


@pytest.fixture(scope="module")
async def year(app: FastAPI, auth_headers: TokenFactory) -> Seeded:
    return await seeded_satker(app, auth_headers)


def _count(seeded: Seeded) -> tuple[Counter[tuple[str, int]], Counter[tuple[str, int]]]:
    done: Counter[tuple[str, int]] = Counter()
    on_time: Counter[tuple[str, int]] = Counter()
    for task in seeded.tasks.values():
        if task.completed_at is None or task.due_at is None:
            continue
        local = task.completed_at.astimezone(WIB)
        if local.year != 2026:
            continue
        for month in (local.month, 0):
            done[task.sop, month] += 1
            on_time[task.sop, month] += task.completed_at <= task.due_at
    return done, on_time


async def test_realisation_month_by_month_matches_an_independent_count(
    client: httpx.AsyncClient, year: Seeded, auth_headers: TokenFactory
) -> None:
    response = await client.get(
        "/v1/reports/indicators",
        params={"satker": year.satker, "year": 2026},
        headers=auth_headers(["kasubbag_ptip"], satker=year.satker),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    done, on_time = _count(year)
    assert len(body["indicators"]) == 12
    checked = 0
    for indicator in body["indicators"]:
        code = indicator["sop"]
        assert indicator["target_percent"] == 100
        for month, figures in enumerate([indicator["year"], *indicator["months"]]):
            if month:
                assert figures["completed"] == done[code, month], (code, month)
            else:
                assert figures["completed"] == done[code, 0]
            assert figures["on_time"] == on_time[code, month]
            if figures["completed"]:
                checked += 1
                share = round(100 * on_time[code, month] / done[code, month], 1)
                assert figures["realisation_percent"] == share
                assert figures["achievement_percent"] == share
            else:
                assert figures["realisation_percent"] is None
    assert checked > 24


async def test_targets_from_settings_and_the_tables(
    migrated: Settings, year: Seeded, auth_headers: TokenFactory
) -> None:
    reports = migrated.reports.model_copy(update={"targets": {"wifi-internet": 80.0}})
    head = auth_headers(["sekretaris"], satker=year.satker)
    params = {"satker": year.satker, "year": "2026"}
    async with serving(migrated.model_copy(update={"reports": reports})) as (_, client):
        body = (await client.get("/v1/reports/indicators", params=params, headers=head)).json()
        wifi = next(i for i in body["indicators"] if i["sop"] == "wifi-internet")
        assert wifi["target_percent"] == 80
        realisation = wifi["year"]["realisation_percent"]
        assert wifi["year"]["achievement_percent"] == round(100 * realisation / 80, 1)

        as_csv = await client.get(
            "/v1/reports/indicators", params={**params, "format": "csv"}, headers=head
        )
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert len(rows) == 13 * len(body["indicators"])
        whole = next(r for r in rows if r["sop"] == "wifi-internet" and r["month"] == "")
        assert float(whole["realisation_percent"]) == realisation
        assert float(whole["target_percent"]) == 80

        as_xlsx = await client.get(
            "/v1/reports/indicators", params={**params, "format": "xlsx"}, headers=head
        )
        sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True)["Indikator 2026"]
        cells = list(sheet.iter_rows(values_only=True))
        assert cells[0][-3:] == ("Target (%)", "Realisasi (%)", "Capaian (%)")
        assert len(cells) == 1 + len(rows)


async def test_year_out_of_range_is_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    for year in ("1999", "3000", "dua ribu"):
        response = await client.get(
            "/v1/reports/indicators", params={"year": year}, headers=auth_headers(["admin"])
        )
        assert response.status_code == 422, response.text
