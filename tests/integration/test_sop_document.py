"""The official SOP document of each of the twelve, read back: every step's activity,
every performer's column header, every time standard as the source writes it."""

from __future__ import annotations

import html
import io
import re

import httpx
import pytest
from pypdf import PdfReader

from services.core.catalog.loader import load_catalog
from services.core.engine.definition import Catalog, SopDefinition
from services.core.latin import latin
from services.core.settings import PROJECT_ROOT

CATALOG: Catalog = load_catalog(PROJECT_ROOT / "sop_catalog")
ROLES = {role.id: role.name for role in CATALOG.roles}


def _squeezed(text: str) -> str:
    # Cells wrap anywhere a line is full: compare without any whitespace.
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("sop", CATALOG.sops, ids=lambda sop: f"{sop.number:02d}")
async def test_the_pdf_holds_every_step_lane_and_time_standard(
    client: httpx.AsyncClient, sop: SopDefinition
) -> None:
    response = await client.get(f"/v1/sops/{sop.code}/document")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) >= 2
    assert reader.pages[0].mediabox.width > reader.pages[0].mediabox.height  # landscape
    text = _squeezed(" ".join(page.extract_text() for page in reader.pages))
    assert _squeezed(latin(f"STANDAR OPERASIONAL PROSEDUR {sop.title.upper()}")) in text
    for step in sop.steps:
        assert _squeezed(latin(step.activity)) in text, step.id
        written = step.time_standard.source_text if step.time_standard else "tidak terbaca"
        assert _squeezed(latin(written)) in text, (step.id, written)
    for lane in sop.lanes:
        assert _squeezed(latin(ROLES[lane])) in text, lane
    for item in sop.legal_basis:
        assert _squeezed(latin(item))[:60] in text


@pytest.mark.parametrize("sop", CATALOG.sops, ids=lambda sop: f"{sop.number:02d}")
async def test_the_html_draws_one_symbol_per_step(
    client: httpx.AsyncClient, sop: SopDefinition
) -> None:
    response = await client.get(f"/v1/sops/{sop.number}/document", params={"format": "html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert page.count("<svg") == len(sop.steps)
    decisions = sum(step.outcomes is not None for step in sop.steps)
    assert page.count("<polygon") == decisions
    for step in sop.steps:
        assert html.escape(step.activity) in page
    for lane in sop.lanes:
        assert f'<th class="lane">{html.escape(ROLES[lane])}</th>' in page


async def test_an_unknown_sop_or_format(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/sops/tidak-ada/document")).status_code == 404
    wrong = await client.get("/v1/sops/wifi-internet/document", params={"format": "docx"})
    assert wrong.status_code == 422
