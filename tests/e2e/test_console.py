"""The staff console in a real browser (Debian's Chromium) against a real `alur dev`:
people of the court sign in, start SOP 08 and complete it each in their own lane, take a
decision by its outcome button, are refused a step of another lane in plain Indonesian,
and the Kasubbag sees escalated work in the overview."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console_support import (
    PASSWORD,
    Console,
    axe_violations,
    chromium_path,
    running_console,
    shot,
    sign_in,
)

pytestmark = pytest.mark.single_pass

playwright_api = pytest.importorskip("playwright.sync_api")

# A small, well-formed PDF: evidence as the office attaches it.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with running_console(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"script errors in the page: {errors}"


def _complete_open_step(page: Any, console: Console, username: str, step: str) -> None:
    sign_in(page, console, username)
    page.get_by_role("link", name=step).first.click()
    page.get_by_role("heading", name=re.compile(re.escape(step.split(". ", 1)[1]))).wait_for()
    page.get_by_role("button", name="Selesaikan langkah").click()
    page.get_by_text("Langkah selesai.").wait_for()


def test_the_console_is_served_by_alur_with_nothing_from_elsewhere(
    console: Console, page: Any
) -> None:
    home = httpx.get(f"{console.url}/", follow_redirects=False, timeout=10)
    assert (home.status_code, home.headers["location"]) == (307, "/console/")
    index = httpx.get(f"{console.url}/console/", timeout=10)
    assert index.status_code == 200
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert index.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{console.url}/console/tidak-ada.js", timeout=10).status_code == 404

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, console, "budi")
    for link in ("Daftar SOP", "Operasional", "Laporan", "Proses"):
        page.get_by_role("link", name=link, exact=True).click()
        page.get_by_role("heading", level=1).wait_for()
    page.wait_for_load_state("networkidle")
    outside = [url for url in requested if not url.startswith((console.url, "data:", "blob:"))]
    assert requested
    assert not outside, outside
    # Small first load: the page and every script and style it needs.
    assets = [url for url in requested if "/console/" in url]
    size = sum(len(httpx.get(url, timeout=10).content) for url in set(assets))
    assert size < 150_000, size


def test_sop_08_runs_from_start_to_end_in_the_right_hands(console: Console, page: Any) -> None:
    sign_in(page, console, "andi")
    shot(page, "inbox-desktop-empty")
    page.get_by_role("link", name="Mulai SOP", exact=True).click()
    page.get_by_label("SOP", exact=True).select_option("wifi-internet")
    page.get_by_label("Perihal").fill("Akun WiFi ruang PTSP")
    page.get_by_role("button", name="Mulai", exact=True).click()
    page.get_by_role("heading", name="Riwayat").wait_for()
    instance_url = page.url
    assert "Berjalan" in page.get_by_role("heading", level=1).inner_text()

    page.get_by_role("link", name="1. Calon pengguna mengajukan permohonan password").click()
    page.get_by_label("Catatan").fill("Untuk laptop loket PTSP")
    page.get_by_role("button", name="Selesaikan langkah").click()
    page.get_by_text("Langkah selesai.").wait_for()

    # The next step is the Staf TI's: the User is refused, in Indonesian, beside the button.
    page.get_by_role("link", name="2. Pembuatan user id & password").click()
    page.get_by_role("button", name="Selesaikan langkah").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == (
        "Langkah ini bukan bagian Anda: hanya Staf TI yang dapat mengerjakannya."
    )

    sign_in(page, console, "budi")
    row = page.locator(".task-card", has_text="Akun WiFi ruang PTSP")
    assert "Penggunaan WiFi/Internet" in row.inner_text()
    # Deadlines in the satker's local time, Indonesian style: "4 Desember 2026, 14.30 WIB".
    assert re.search(r"\d{1,2} [A-Z][a-z]+ \d{4}, \d{2}\.\d{2} WIB", row.inner_text())
    shot(page, "inbox-desktop")
    row.get_by_role("link", name="2. Pembuatan user id & password").click()
    page.get_by_role("heading", name="Langkah 2: Pembuatan user id & password").wait_for()
    assert "Server sistem informasi dan database" in page.inner_text("main")
    page.get_by_label("Lampirkan berkas").set_input_files(
        files=[{"name": "berita-acara.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.get_by_text("Berkas berita-acara.pdf dilampirkan.").wait_for()
    page.get_by_label("Bukti (nomor surat, tautan; satu per baris)").fill("W8-U1/123/2026")
    shot(page, "task-desktop")
    page.get_by_role("button", name="Selesaikan langkah").click()
    page.get_by_text("Langkah selesai.").wait_for()

    _complete_open_step(page, console, "andi", "3. Tes koneksi")
    page.goto(instance_url)
    # The procedure's page, once drawn, says it is complete.
    page.get_by_role("heading", level=1, name="Akun WiFi ruang PTSP Selesai").wait_for()
    timeline = page.locator(".timeline").inner_text()
    assert "Andi Pengguna" in timeline
    assert "Budi Santoso, S.Kom." in timeline
    assert "catatan: Untuk laptop loket PTSP" in timeline
    assert "Jejak audit utuh" in page.inner_text("main")
    files = page.locator("section", has_text="Berkas bukti")
    with page.expect_download() as download:
        files.get_by_role("button", name="berita-acara.pdf").click()
    assert Path(download.value.path()).read_bytes() == PDF
    evidence = console.api("GET", f"/v1/instances/{instance_url.rsplit('/', 1)[1]}", "andi")
    [step_2] = [task for task in evidence.json()["tasks"] if task["step_number"] == 2]
    assert len(step_2["evidence"]) == 2
    assert "W8-U1/123/2026" in step_2["evidence"]
    # The diagram shades the three completed steps.
    assert page.locator("svg.flow g.step.done").count() == 3
    shot(page, "instance-desktop")


def test_a_decision_is_taken_with_buttons_named_by_its_outcomes(
    console: Console, page: Any
) -> None:
    sign_in(page, console, "budi")
    page.get_by_role("link", name="Mulai SOP", exact=True).click()
    page.get_by_label("SOP", exact=True).select_option("gangguan-jaringan")
    page.get_by_label("Perihal").fill("Jaringan lantai 2 putus")
    page.get_by_role("button", name="Mulai", exact=True).click()
    page.get_by_role("heading", name="Riwayat").wait_for()
    page.locator("section", has_text="Langkah terbuka").get_by_role("link").first.click()
    page.get_by_role("button", name="Selesaikan langkah").click()
    page.get_by_text("Langkah selesai.").wait_for()
    page.locator("section", has_text="Langkah terbuka").get_by_role("link").first.click()
    decision = page.get_by_role("group", name="Keputusan:")
    decision.wait_for()
    outcomes = decision.get_by_role("button")
    assert outcomes.all_inner_texts() == ["selesai", "tidak selesai"]
    page.get_by_role("button", name="tidak selesai").click()
    page.get_by_text("Langkah selesai.").wait_for()
    assert "keputusan: tidak selesai" in page.locator(".timeline").inner_text()
    # The Kasubbag's step is open now, drawn as the current step.
    assert page.locator("svg.flow g.step.current").count() == 1
    assert "Kasubbag" in page.locator("section", has_text="Langkah terbuka").inner_text()


def test_the_kasubbag_sees_escalated_work_in_the_overview(console: Console, page: Any) -> None:
    # A request begun on paper a week ago, recorded by the admin: overdue at once, and the
    # worker's sweep (every 2 s here) escalates it up the chain.
    started = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    made = console.api(
        "POST",
        "/v1/instances",
        "admin",
        json={"sop": "wifi-internet", "title": "Permohonan di atas kertas", "started_at": started},
    )
    assert made.status_code == 201, made.text
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while datetime.now(UTC) < deadline:
        view = console.api("GET", "/v1/overview", "sari").json()
        if view["total"]["escalated"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the worker did not escalate the overdue task within 60 s")

    sign_in(page, console, "budi")
    assert page.get_by_role("link", name="Ikhtisar", exact=True).count() == 0
    sign_in(page, console, "sari")
    page.get_by_role("link", name="Ikhtisar", exact=True).click()
    page.get_by_role("heading", name="Ikhtisar pekerjaan").wait_for()
    escalations = page.get_by_role("table", name="Tugas yang dieskalasi")
    assert "Permohonan di atas kertas" in escalations.inner_text()
    assert "Dieskalasi (tingkat" in escalations.inner_text()
    by_sop = page.get_by_role("table", name="Per SOP").inner_text()
    assert "08 — Penggunaan WiFi/Internet" in by_sop
    shot(page, "overview-desktop")
    # The late task in the inbox says how late, in working time.
    sign_in(page, console, "admin")
    late = page.locator(".task-card", has_text="Permohonan di atas kertas").locator("dd.late")
    assert re.fullmatch(r"\d+ hari kerja( \d+ jam)?", late.inner_text()), late.inner_text()


def test_on_a_phone_the_console_fits_and_speaks_english_on_request(
    console: Console, browser: Any
) -> None:
    made = console.api(
        "POST", "/v1/instances", "andi", json={"sop": "wifi-internet", "title": "WiFi ruang hakim"}
    )
    assert made.status_code == 201, made.text
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True)
    phone = context.new_page()
    sign_in(phone, console, "andi")
    phone.locator(".task-card", has_text="WiFi ruang hakim").wait_for()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, width
    assert phone.get_by_role("navigation").is_hidden()
    shot(phone, "inbox-phone")
    phone.locator(".task-card", has_text="WiFi ruang hakim").get_by_role("link").first.click()
    phone.get_by_role("button", name="Selesaikan langkah").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    shot(phone, "task-phone")
    phone.get_by_role("button", name="Menu").click()
    phone.get_by_role("link", name="Daftar SOP", exact=True).click()
    phone.get_by_role("heading", name="Daftar SOP").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.get_by_label("Bahasa").select_option("en")
    phone.get_by_role("heading", name="SOPs").wait_for()
    phone.get_by_role("button", name="Menu").click()
    assert phone.get_by_role("link", name="My tasks").is_visible()
    phone.get_by_label("Language").select_option("id")
    context.close()


def test_a_lost_connection_is_said_and_retried(console: Console, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, console, "budi")
    context.set_offline(True)
    page.get_by_role("link", name="Proses", exact=True).click()
    banner = page.get_by_text("Koneksi ke Alur terputus. Mencoba lagi…")
    banner.wait_for()
    context.set_offline(False)
    page.get_by_role("heading", name="Proses berjalan").wait_for(timeout=30_000)
    banner.wait_for(state="hidden")
    context.close()


def test_operations_show_each_panel_and_admins_see_webhooks(console: Console, page: Any) -> None:
    # A monitored website (SOP 05): Alur's own liveness page, checked by the real worker.
    monitor = console.api(
        "POST",
        "/v1/monitors",
        "admin",
        json={"name": "Situs PN Tais", "url": f"{console.url}/healthz", "interval_seconds": 10,
              "confirmations": 1, "check_domain": False, "check_certificate": False},
    )  # fmt: skip
    assert monitor.status_code == 201, monitor.text
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    path = f"/v1/monitors/{monitor.json()['id']}"
    while console.api("GET", path, "admin").json()["state"] != "up":
        assert datetime.now(UTC) < deadline, "the worker did not check the monitor within 60 s"
        time.sleep(0.5)
    sign_in(page, console, "budi")
    page.get_by_role("link", name="Operasional", exact=True).click()
    page.get_by_role("heading", name="Pemantauan website").wait_for()
    for panel in ("Pemeriksaan backup dan sinkronisasi SIPP", "Perpanjangan layanan"):
        assert page.get_by_role("heading", name=panel).is_visible()
    card = page.locator("li.card", has_text="Situs PN Tais")
    assert "Aktif" in card.inner_text()
    assert "Sertifikat tidak diperiksa" in card.inner_text()
    assert re.search(r"Waktu respons \(ms\), pemeriksaan terakhir: \d+ ms", card.inner_text())
    assert card.locator("svg.spark rect.up").count() >= 1
    assert page.get_by_role("heading", name="Langganan webhook").count() == 0
    due = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    renewal = console.api(
        "POST",
        "/v1/renewals",
        "admin",
        json={"service": "domain", "name": "pn-tais.go.id", "provider": "PANDI", "due_date": due},
    )
    assert renewal.status_code == 201, renewal.text
    sign_in(page, console, "admin")
    page.get_by_role("link", name="Operasional", exact=True).click()
    for panel in ("Langganan webhook", "Log pengiriman webhook", "Sumber webhook masuk"):
        page.get_by_role("heading", name=panel).wait_for()
    assert page.get_by_role("alert").count() == 0, page.get_by_role("alert").all_inner_texts()
    row = page.get_by_role("table", name="Perpanjangan layanan").get_by_role("row").nth(1)
    assert re.fullmatch(
        r"pn-tais\.go\.id\tdomain\tPANDI\t\d{1,2} [A-Z][a-z]+ \d{4} (19|20) hari lagi",
        row.inner_text(),
    ), row.inner_text()


def test_reports_download_from_the_console(console: Console, page: Any) -> None:
    sign_in(page, console, "sari")
    page.get_by_role("link", name="Laporan", exact=True).click()
    performance = page.locator("section", has_text="Kinerja SOP")
    with page.expect_download() as csv:
        performance.get_by_role("button", name="Unduh CSV").click()
    assert csv.value.suggested_filename.startswith("kinerja-sop-")
    header = Path(csv.value.path()).read_text(encoding="utf-8-sig").splitlines()[0]
    assert "sop" in header.lower(), header
    monev = page.locator("section", has_text="Formulir Monev SOP")
    with page.expect_download() as pdf:
        monev.get_by_role("button", name="Unduh PDF").click()
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
    assert page.get_by_role("alert").count() == 0


def test_a_wrong_password_and_a_pasted_token(console: Console, page: Any) -> None:
    page.goto(f"{console.url}/console/")
    page.get_by_label("Nama pengguna").fill("budi")
    page.get_by_label("Kata sandi", exact=True).fill(PASSWORD + "salah")
    page.get_by_role("button", name="Masuk", exact=True).click()
    assert page.get_by_role("alert").inner_text() == "Nama pengguna atau kata sandi salah."
    page.get_by_text("Atau tempel token akses (JWT)").first.click()
    page.get_by_label("Token akses").fill(console.token("sari"))
    page.get_by_role("button", name="Gunakan token").click()
    page.get_by_role("heading", name="Tugas saya").wait_for()
    assert "Sari Dewi, S.E." in page.locator("#who").inner_text()
    page.get_by_role("button", name="Keluar").click()
    page.get_by_role("heading", name="Masuk ke Alur").wait_for()


@pytest.mark.parametrize(
    "route", ["#/tasks", "#/start", "#/instances", "#/sops", "#/sops/09", "#/operations",
              "#/reports", "#/overview"],
)  # fmt: skip
def test_the_main_pages_have_no_serious_accessibility_violations(
    console: Console, browser: Any, route: str
) -> None:
    # axe-core is injected as a script, which the console's CSP would refuse.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    sign_in(page, console, "sari")
    page.goto(f"{console.url}/console/{route}")
    page.get_by_role("heading", level=1).wait_for()
    page.wait_for_load_state("networkidle")
    assert axe_violations(page) == []
    context.close()


def test_the_sign_in_page_has_no_serious_accessibility_violations(
    console: Console, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{console.url}/console/")
    page.get_by_role("heading", name="Masuk ke Alur").wait_for()
    assert axe_violations(page) == []
    context.close()
