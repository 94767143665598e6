"""Evidence files without a database: the engine's `AttachFile`, file names as clients
send them, and media types read from content."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.core.engine.errors import InstanceClosed, TaskNotFound
from services.core.engine.state import AttachedFile, AttachFile, Cancel, FileAttached
from services.core.files.media import UnsupportedMediaType, detect
from services.core.files.service import clean_name, is_file_id
from tests.files_support import ELF, pdf, png, xlsx
from tests.unit.machine_cases import ADMIN, UMUM, run, walk

FILE = AttachedFile(
    id="0b8f3f0e-6a4f-4c55-9a7e-3f1d2c4b5a69",
    name="berita-acara.pdf",
    media_type="application/pdf",
    size=48213,
    sha256="9f" * 32,
)


@pytest.mark.parametrize("task_id", [None, "t1"])
def test_attaching_records_the_file_and_changes_only_the_version(task_id: str | None) -> None:
    snapshot = walk([])
    decision = run(snapshot, AttachFile(actor=UMUM, file=FILE, task_id=task_id))
    assert decision.state == replace(snapshot, version=snapshot.version + 1)
    assert decision.effects == (
        FileAttached(
            file_id=FILE.id,
            name=FILE.name,
            media_type=FILE.media_type,
            size=FILE.size,
            sha256=FILE.sha256,
            task_id=task_id,
        ),
    )
    assert decision.effects[0].event_type == "file.attached"


def test_a_file_goes_to_an_open_task_of_an_open_instance() -> None:
    snapshot = walk([])
    with pytest.raises(TaskNotFound):
        run(snapshot, AttachFile(actor=UMUM, file=FILE, task_id="no-such-task"))
    closed = run(snapshot, Cancel(actor=ADMIN, reason="duplikat")).state
    with pytest.raises(InstanceClosed):
        run(closed, AttachFile(actor=UMUM, file=FILE))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("C:\\fakepath\\Surat Tugas.pdf", "Surat Tugas.pdf"),
        ("../../etc/passwd", "passwd"),
        ("nota\x00\x1b[31mdinas.pdf", "nota[31mdinas.pdf"),
        ("", "berkas"),
        ("...", "berkas"),
        ("a" * 300 + ".docx", "a" * 250 + ".docx"),
        ("b" * 300, "b" * 255),
        ("Laporan Kinerja – Triwulan IV.xlsx", "Laporan Kinerja – Triwulan IV.xlsx"),
    ],
)
def test_file_names_are_cleaned_for_display_and_download(raw: str, shown: str) -> None:
    assert clean_name(raw) == shown


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (pdf(), "application/pdf"),
        (png(), "image/png"),
        (xlsx()[:8192], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"Berita acara pemusnahan\n", "text/plain"),
        # A multi-byte character cut by the end of the sample is still text.
        (("é" * 4095 + "€").encode()[:8192], "text/plain"),
    ],
)
def test_accepted_kinds_are_read_from_the_content(content: bytes, media_type: str) -> None:
    assert detect(content, "x") == media_type


@pytest.mark.parametrize(
    "content",
    [ELF, b"MZ\x90\x00" + b"\x00" * 60, b"PK\x03\x04" + b"\x00" * 30, b"#!\x00/bin/sh", b""],
    ids=["elf", "windows-exe", "zip", "binary", "empty"],
)
def test_other_content_is_refused(content: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        detect(content, "laporan.pdf")


def test_file_ids_are_uuids() -> None:
    assert is_file_id(FILE.id)
    assert not is_file_id("backup-check:12")
    assert not is_file_id(FILE.id.upper())
