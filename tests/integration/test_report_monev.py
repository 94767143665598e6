"""The Monev SOP form as a PDF, read back: every SOP's section with its figures as the
performance report gives them, the corrective actions recorded, Indonesian dates and
numbers, and the names of the Kasubbag and the Sekretaris from the people records."""

from __future__ import annotations

import io
import re

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from services.core.latin import latin
from services.core.reports.periods import percent_id
from tests.people import add_person
from tests.report_seed import Seeded, seeded_satker
from tests.support import TokenFactory


@pytest.fixture(scope="module")
async def court(app: FastAPI, auth_headers: TokenFactory) -> Seeded:
    return await seeded_satker(app, auth_headers)


def _text(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return re.sub(r"\s+", " ", text), len(reader.pages)


async def test_the_form_holds_each_sop_with_its_figures_and_signatories(
    client: httpx.AsyncClient, court: Seeded, auth_headers: TokenFactory
) -> None:
    admin = auth_headers(["admin"], satker=court.satker)
    await add_person(client, admin, prefix="kasubbag", roles=("kasubbag_ptip",),
                     name="Siti Rahmawati, S.Kom.", satker=court.satker)  # fmt: skip
    await add_person(client, admin, prefix="sekretaris", roles=("sekretaris",),
                     name="Drs. Budi Santoso", satker=court.satker)  # fmt: skip
    head = auth_headers(["sekretaris"], satker=court.satker)
    params = {"satker": court.satker, "period": "2026-Q3"}
    response = await client.get("/v1/reports/monev", params=params, headers=head)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    text, pages = _text(response.content)
    assert pages >= 2
    assert "FORMULIR MONITORING DAN EVALUASI PELAKSANAAN SOP" in text
    assert "Triwulan III 2026 (1 Juli 2026 s.d. 30 September 2026)" in text
    assert "Pengadilan Negeri Uji Laporan, 30 September 2026" in text
    assert "Siti Rahmawati, S.Kom." in text
    assert "Drs. Budi Santoso" in text

    report = (
        await client.get(
            "/v1/reports/sop-performance",
            params={"satker": court.satker, "from": "2026-07-01", "to": "2026-09-30"},
            headers=head,
        )
    ).json()
    assert len(report["sops"]) == 12
    for sop in report["sops"]:
        figures = sop["figures"]
        assert f"SOP {sop['number']:02d}. " in text
        share = percent_id(figures["on_time_percent"])
        sentence = latin(
            f"{figures['on_time']} tepat waktu, {figures['late']} terlambat, "
            f"{figures['open']} masih berjalan; tepat waktu {share}"
        )
        assert sentence in text, sentence
    # Indonesian numbers: a decimal comma where there is a fraction.
    shares = [s["figures"]["on_time_percent"] for s in report["sops"]]
    assert any(share is not None and share % 1 for share in shares)
    assert re.search(r"tepat waktu \d{1,3},\d %", text)
    late = report["late_tasks"][0]
    assert late["title"] in text


async def test_corrective_actions_are_listed_under_their_sop(
    client: httpx.AsyncClient, court: Seeded, auth_headers: TokenFactory
) -> None:
    head = auth_headers(["kasubbag_ptip"], satker=court.satker)
    instances = (
        await client.get(
            "/v1/instances",
            params={"satker": court.satker, "state": "active", "limit": 5},
            headers=head,
        )
    ).json()["items"]
    assert instances
    chosen = instances[0]
    commented = await client.post(
        f"/v1/instances/{chosen['id']}/comments",
        json={"text": "Jadwal pemeriksaan dipercepat setiap Senin.", "kind": "tindak_lanjut"},
        headers=head,
    )
    assert commented.status_code == 200, commented.text
    plain = await client.post(
        f"/v1/instances/{chosen['id']}/comments",
        json={"text": "Catatan biasa, bukan tindak lanjut."},
        headers=head,
    )
    assert plain.status_code == 200
    recorded = await client.post(
        "/v1/reports/follow-ups",
        json={"sop": "wifi-internet", "period": "2026-Q4", "text": "Formulir akun diperbarui.",
              "satker": court.satker},
        headers=head,
    )  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["sop_code"] == "wifi-internet"
    listed = await client.get(
        "/v1/reports/follow-ups", params={"satker": court.satker, "period": "2026-Q4"},
        headers=head,
    )  # fmt: skip
    assert [item["text"] for item in listed.json()["items"]] == ["Formulir akun diperbarui."]

    response = await client.get(
        "/v1/reports/monev", params={"satker": court.satker, "period": "2026-Q4"}, headers=head
    )
    text, _ = _text(response.content)
    assert "Jadwal pemeriksaan dipercepat setiap Senin." in text
    assert "Formulir akun diperbarui." in text
    assert "Catatan biasa" not in text
    assert "Triwulan IV 2026 (1 Oktober 2026 s.d. 31 Desember 2026)" in text


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"sop": "tidak-ada", "period": "2026-Q4", "text": "x"}, "sop_not_found"),
        ({"sop": "wifi-internet", "period": "2026-Q5", "text": "x"}, "invalid_period"),
        ({"sop": "wifi-internet", "period": "2026", "text": ""}, "validation_error"),
    ],
)
async def test_a_follow_up_needs_a_sop_a_period_and_a_text(
    client: httpx.AsyncClient, auth_headers: TokenFactory, body: dict[str, str], code: str
) -> None:
    response = await client.post(
        "/v1/reports/follow-ups", json=body, headers=auth_headers(["kasubbag_ptip"])
    )
    assert response.json()["code"] == code, response.text


async def test_clerks_get_no_form(client: httpx.AsyncClient, auth_headers: TokenFactory) -> None:
    response = await client.get(
        "/v1/reports/monev", params={"period": "2026-Q4"}, headers=auth_headers(["staf_ti"])
    )
    assert response.status_code == 403
