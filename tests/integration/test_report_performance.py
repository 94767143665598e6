"""The SOP performance report against a quarter of activity seeded with a fixed clock,
counted again here from the seed's own record."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from services.api.context import AppContext
from tests.report_seed import Seeded, seeded_satker
from tests.support import TokenFactory

Q3 = {"from": "2026-07-01", "to": "2026-09-30"}
# 1 July 2026 00:00 WIB and 1 October 2026 00:00 WIB, in UTC.
Q3_START = datetime(2026, 6, 30, 17, tzinfo=UTC)
Q3_END = datetime(2026, 9, 30, 17, tzinfo=UTC)


@pytest.fixture(scope="module")
async def quarter(app: FastAPI, auth_headers: TokenFactory) -> Seeded:
    return await seeded_satker(app, auth_headers)


def _expected(seeded: Seeded, now: datetime) -> dict[str, dict[str, Counter[str]]]:
    counts: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for task in seeded.tasks.values():
        if not Q3_START <= task.opened_at < Q3_END:
            continue
        for key in (task.step_id, "*"):
            tally = counts[task.sop][key]
            tally["tasks"] += 1
            if task.completed_at is None:
                tally["open"] += 1
                if task.due_at is not None and task.due_at <= now:
                    tally["open_overdue"] += 1
            elif task.due_at is None:
                tally["without_standard"] += 1
            elif task.completed_at <= task.due_at:
                tally["on_time"] += 1
            else:
                tally["late"] += 1
    return counts


FIGURES = ("tasks", "on_time", "late", "without_standard", "open", "open_overdue")


async def test_the_figures_match_an_independent_count(
    client: httpx.AsyncClient, quarter: Seeded, auth_headers: TokenFactory
) -> None:
    head = auth_headers(["kasubbag_ptip"], satker=quarter.satker)
    response = await client.get(
        "/v1/reports/sop-performance", params={**Q3, "satker": quarter.satker}, headers=head
    )
    assert response.status_code == 200, response.text
    report = response.json()
    expected = _expected(quarter, datetime.now(UTC))
    assert {sop["sop"] for sop in report["sops"]} == set(expected)
    assert len(report["sops"]) == 12
    instances = Counter(
        quarter.instances[t.instance_id]
        for t in {t.instance_id: t for t in quarter.tasks.values()
                  if Q3_START <= t.opened_at < Q3_END}.values()
    )  # fmt: skip
    for sop in report["sops"]:
        assert sop["instances"] == instances[sop["sop"]]
        for name in FIGURES:
            assert sop["figures"][name] == expected[sop["sop"]]["*"][name], (sop["sop"], name)
        assert {step["step"] for step in sop["steps"]} == set(expected[sop["sop"]]) - {"*"}
        for step in sop["steps"]:
            for name in FIGURES:
                assert step["figures"][name] == expected[sop["sop"]][step["step"]][name]
            judged = step["figures"]["on_time"] + step["figures"]["late"]
            if judged:
                assert step["figures"]["on_time_percent"] == round(
                    100 * step["figures"]["on_time"] / judged, 1
                )
    # The seed has every kind of outcome, so each comparison above meant something.
    for name in ("on_time", "late", "open"):
        assert sum(sop["figures"][name] for sop in report["sops"]) > 0, name
    numbers = [sop["number"] for sop in report["sops"]]
    assert numbers == sorted(numbers)

    late = [t for t in quarter.tasks.values() if Q3_START <= t.opened_at < Q3_END
            and t.completed_at and t.due_at and t.completed_at > t.due_at]  # fmt: skip
    assert report["late_tasks_total"] >= len(late) > 0
    listed = {(t["instance_id"], t["step"]): t for t in report["late_tasks"]}
    for task in late:
        shown = listed[(task.instance_id, task.step_id)]
        expected_reasons = task.comments + ([task.note] if task.note else [])
        assert shown["reasons"] == expected_reasons
        # Working time: done after hours, past a due date at closing time, is 0 late.
        assert shown["late_seconds"] >= 0
    assert sum(t["late_seconds"] for t in report["late_tasks"]) > 0
    lateness = [t["late_seconds"] for t in report["late_tasks"]]
    assert lateness == sorted(lateness, reverse=True)


async def test_durations_are_working_time_with_nearest_rank_percentiles(
    client: httpx.AsyncClient, quarter: Seeded, auth_headers: TokenFactory, app: FastAPI
) -> None:
    context: AppContext = app.state.context
    async with context.unit(read_only=True) as work:
        directory = await context.services.directory(work.session, quarter.satker)
        calendar = await context.services.calendars.get(work.session, directory.get(quarter.satker))
    head = auth_headers(["sekretaris"], satker=quarter.satker)
    report = (
        await client.get(
            "/v1/reports/sop-performance",
            params={**Q3, "satker": quarter.satker, "sop": "wifi-internet"},
            headers=head,
        )
    ).json()
    assert [sop["sop"] for sop in report["sops"]] == ["wifi-internet"]
    step = max(report["sops"][0]["steps"], key=lambda s: s["figures"]["completed"])
    spans = sorted(
        calendar.working_time_between(t.opened_at, t.completed_at).total_seconds()
        for t in quarter.tasks.values()
        if t.sop == "wifi-internet" and t.step_id == step["step"] and t.completed_at
        and Q3_START <= t.opened_at < Q3_END
    )  # fmt: skip
    assert step["figures"]["median_seconds"] == round(spans[(len(spans) + 1) // 2 - 1], 1)
    p90 = spans[-(-9 * len(spans) // 10) - 1]
    assert step["figures"]["p90_seconds"] == round(p90, 1)
    shares = sorted(
        100 * calendar.working_time_between(t.opened_at, t.completed_at)
        / calendar.working_time_between(t.opened_at, t.due_at)
        for t in quarter.tasks.values()
        if t.sop == "wifi-internet" and t.step_id == step["step"] and t.completed_at
        and t.due_at and Q3_START <= t.opened_at < Q3_END
    )  # fmt: skip
    median_share = shares[(len(shares) + 1) // 2 - 1]
    assert abs(step["figures"]["median_standard_percent"] - median_share) <= 0.05


async def test_csv_and_xlsx_hold_the_same_figures(
    client: httpx.AsyncClient, quarter: Seeded, auth_headers: TokenFactory
) -> None:
    head = auth_headers(["ketua"], satker=quarter.satker)
    params = {**Q3, "satker": quarter.satker}
    report = (await client.get("/v1/reports/sop-performance", params=params, headers=head)).json()
    as_csv = await client.get(
        "/v1/reports/sop-performance", params={**params, "format": "csv"}, headers=head
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    totals = {row["sop"]: row for row in rows if row["step"] == ""}
    assert len(rows) == sum(1 + len(sop["steps"]) for sop in report["sops"])
    for sop in report["sops"]:
        assert int(totals[sop["sop"]]["late"]) == sop["figures"]["late"]
        assert int(totals[sop["sop"]]["instances"]) == sop["instances"]

    as_xlsx = await client.get(
        "/v1/reports/sop-performance", params={**params, "format": "xlsx"}, headers=head
    )
    book = load_workbook(io.BytesIO(as_xlsx.content), read_only=True)
    assert book.sheetnames == ["Kinerja SOP", "Tugas terlambat"]
    sheet: Any = book["Kinerja SOP"]
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[0][:3] == ("No. SOP", "Kode SOP", "Nama SOP")
    on_time = cells[0].index("Tepat waktu")
    first = report["sops"][0]
    assert cells[1][1] == first["sop"]
    assert cells[1][on_time] == first["figures"]["on_time"]
    late_sheet: Any = book["Tugas terlambat"]
    assert sum(1 for _ in late_sheet.iter_rows()) == 1 + len(report["late_tasks"])


@pytest.mark.parametrize(
    ("roles", "satker", "status"),
    [
        (["staf_ti"], None, 403),
        (["kasubbag_ptip"], "pn-manna", 404),
        (["sekretaris"], "pt-bengkulu", 200),
        (["admin"], None, 200),
    ],
)
async def test_who_reads_the_report(
    client: httpx.AsyncClient,
    quarter: Seeded,
    auth_headers: TokenFactory,
    roles: list[str],
    satker: str | None,
    status: int,
) -> None:
    headers = auth_headers(roles, satker=satker or quarter.satker)
    response = await client.get(
        "/v1/reports/sop-performance", params={**Q3, "satker": quarter.satker}, headers=headers
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-10-01", "to": "2026-09-30"},
        {"from": "2020-01-01", "to": "2026-09-30"},
        {"from": "2026-13-01"},
        {"format": "pdf"},
        {"sop": "x" * 65},
    ],
)
async def test_a_bad_period_or_format_is_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory, params: dict[str, str]
) -> None:
    response = await client.get(
        "/v1/reports/sop-performance", params=params, headers=auth_headers(["admin"])
    )
    assert response.status_code == 422, response.text
