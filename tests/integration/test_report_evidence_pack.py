"""The AMPUH evidence pack: built while the request waits or by the real worker, read
back member by member against its manifest and the files attached."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfReader

from services.api.context import AppContext
from services.core.files.storage import content_key
from services.core.settings import Settings
from tests.files_support import pdf, png, xlsx
from tests.report_seed import completed_with_files, monday_morning
from tests.support import TokenFactory, serving
from tests.workers import run_burst

Q3 = {"from": "2026-07-01", "to": "2026-09-30"}


class Court:
    def __init__(self, satker: str, contents: dict[str, bytes], titles: list[str]) -> None:
        self.satker = satker
        self.contents = contents  # sha256 -> content
        self.titles = titles


@pytest.fixture(scope="module")
async def court(
    app: FastAPI, auth_headers: TokenFactory, tmp_path_factory: pytest.TempPathFactory
) -> Court:
    satker = f"pn-ampuh-{uuid.uuid4().hex[:6]}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur.test") as client:
        created = await client.post(
            "/v1/satkers",
            json={"id": satker, "name": "Pengadilan Negeri Uji Bukti", "parent": "pt-bengkulu"},
            headers=auth_headers(["admin"], satker="pt-bengkulu"),
        )
        assert created.status_code == 201, created.text
    context: AppContext = app.state.context
    tmp = tmp_path_factory.mktemp("pack")
    tag = uuid.uuid4().hex
    files = {
        "wifi-internet": [pdf(f"Formulir akun {tag}"), png(3, 3)],
        "konten-website": [xlsx(), pdf(f"Tangkapan layar {tag}")],
    }
    contents: dict[str, bytes] = {}
    titles = []
    for day, (sop, attached) in enumerate(files.items()):
        view = await completed_with_files(
            context, satker, sop, monday_morning(2026, 7, 6 + day), attached, tmp
        )
        assert view.record.status == "completed"
        titles.append(view.record.title)
        contents.update({hashlib.sha256(c).hexdigest(): c for c in attached})
    # Completed in June (outside the period) and never completed: both left out.
    await completed_with_files(context, satker, "wifi-internet", monday_morning(2026, 6, 1),
                               [pdf(f"Juni {tag}")], tmp)  # fmt: skip
    return Court(satker, contents, titles)


def _check(pack: bytes, court: Court) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(pack))
    names = archive.namelist()
    assert names[-1] == "MANIFEST.sha256"
    assert "00-indeks.pdf" in names
    manifest = archive.read("MANIFEST.sha256").decode().splitlines()
    listed = {}
    for line in manifest:
        digest, name = line.split("  ", 1)
        listed[name] = digest
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
    assert set(listed) == set(names) - {"MANIFEST.sha256"}
    evidence = [name for name in names if "/bukti/" in name]
    assert sorted(hashlib.sha256(archive.read(n)).hexdigest() for n in evidence) == sorted(
        court.contents
    )
    records = [name for name in names if name.endswith("/rekaman.pdf")]
    assert len(records) == 2
    assert all(re.match(r"^\d{2}-[a-z0-9-]+/\d{3}-[0-9a-f]{8}/rekaman\.pdf$", n) for n in records)
    return archive


def _pdf_text(data: bytes) -> str:
    return re.sub(
        r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    )


async def test_a_small_pack_is_built_while_the_request_waits(
    client: httpx.AsyncClient, court: Court, auth_headers: TokenFactory
) -> None:
    head = auth_headers(["kasubbag_ptip"], satker=court.satker)
    response = await client.get(
        "/v1/reports/evidence-pack", params={**Q3, "satker": court.satker}, headers=head
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    archive = _check(response.content, court)
    index = _pdf_text(archive.read("00-indeks.pdf"))
    assert "PAKET BUKTI AKREDITASI PENJAMINAN MUTU (AMPUH)" in index
    assert "1 Juli 2026 s.d. 30 September 2026" in index
    assert "Jumlah berkas bukti: 4" in index
    record_name = next(n for n in archive.namelist() if n.endswith("rekaman.pdf"))
    record = _pdf_text(archive.read(record_name))
    assert "REKAMAN PELAKSANAAN SOP" in record
    assert "utuh:" in record
    assert "rantai hash sah" in record
    assert any(title in record for title in court.titles)
    assert any(digest in record.replace(" ", "") for digest in court.contents)


async def test_a_large_pack_is_built_by_the_worker(
    client: httpx.AsyncClient, court: Court, auth_headers: TokenFactory, migrated: Settings
) -> None:
    head = auth_headers(["sekretaris"], satker=court.satker)
    queued = await client.get(
        "/v1/reports/evidence-pack",
        params={**Q3, "satker": court.satker, "background": "true"},
        headers=head,
    )
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert queued.headers["location"] == f"/v1/report-jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["download"] is None
    early = await client.get(f"/v1/report-jobs/{job['id']}/file", headers=head)
    assert (early.status_code, early.json()["code"]) == (409, "report_not_ready")

    await run_burst(migrated)
    done = (await client.get(f"/v1/report-jobs/{job['id']}", headers=head)).json()
    assert done["status"] == "done", done
    assert done["progress"] == done["total"] == 2
    download = await client.get(done["download"], headers=head)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == done["sha256"]
    assert len(download.content) == done["size"]
    _check(download.content, court)

    stranger = auth_headers(["kasubbag_ptip"], satker="pn-manna")
    assert (await client.get(f"/v1/report-jobs/{job['id']}", headers=stranger)).status_code == 404
    parent = auth_headers(["ketua"], satker="pt-bengkulu")
    assert (await client.get(f"/v1/report-jobs/{job['id']}", headers=parent)).status_code == 200


async def test_past_the_inline_limit_the_pack_goes_to_a_worker(
    migrated: Settings, court: Court, auth_headers: TokenFactory
) -> None:
    reports = migrated.reports.model_copy(update={"inline_pack_bytes": 0})
    async with serving(migrated.model_copy(update={"reports": reports})) as (_, client):
        response = await client.get(
            "/v1/reports/evidence-pack",
            params={**Q3, "satker": court.satker},
            headers=auth_headers(["admin"], satker=court.satker),
        )
    assert response.status_code == 202, response.text


async def test_content_changed_in_the_store_is_shown_not_hidden(
    client: httpx.AsyncClient, court: Court, auth_headers: TokenFactory, migrated: Settings
) -> None:
    digest = next(d for d, c in court.contents.items() if c.startswith(b"%PDF"))
    stored = migrated.data_dir / "files" / content_key(digest)
    original = stored.read_bytes()
    try:
        stored.write_bytes(
            original.replace(b"Formulir", b"Formulil").replace(b"Tangkapan", b"Tangkapam")
        )
        response = await client.get(
            "/v1/reports/evidence-pack",
            params={**Q3, "satker": court.satker},
            headers=auth_headers(["admin"], satker=court.satker),
        )
    finally:
        stored.write_bytes(original)
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    records = [_pdf_text(archive.read(n)) for n in archive.namelist() if n.endswith("rekaman.pdf")]
    assert any("ISI TIDAK SESUAI" in text for text in records)


async def test_clerks_and_strangers_get_no_pack(
    client: httpx.AsyncClient, court: Court, auth_headers: TokenFactory
) -> None:
    for roles, satker, status in ((["staf_ti"], court.satker, 403), (["admin"], "pn-manna", 404)):
        response = await client.get(
            "/v1/reports/evidence-pack", params={**Q3, "satker": court.satker},
            headers=auth_headers(roles, satker=satker),
        )  # fmt: skip
        assert response.status_code == status
    missing = await client.get(
        "/v1/report-jobs/00000000-0000-4000-8000-000000000000", headers=auth_headers(["admin"])
    )
    assert missing.json()["code"] == "report_job_not_found"
