"""A SOP's `effective_date` and `review_months`: read from the YAML, checked with file
and line, printed in the official document, and invisible in the content hash of a SOP
that does not set them (every stored version keeps its hash)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from services.core.catalog import document
from services.core.catalog.loader import load_catalog, validate_catalog
from services.core.catalog.service import content_hash, stored_content
from services.core.engine.definition import SopDefinition

CATALOG_DIR = Path(__file__).resolve().parents[2] / "sop_catalog"
SOP_07 = "07-gangguan-jaringan.yaml"

# The content hashes of the twelve seed SOPs as stored by every deployment before the
# review fields existed (computed at commit 0d9197e). A stored (code, version) whose
# hash changes is refused at startup (`CatalogVersionConflict`), so these must never
# move; a new field of SopDefinition must be left out of the stored content while it
# holds its default (`services.core.catalog.service._ADDED_FIELDS`).
SEED_HASHES = {
    ("rkakl", 1): "4040b702db4119b55a6b3b1613b56643792c7a2808a14c2fa4ceae3066d3576f",
    ("revisi-dipa-pok", 1): "82224896d1cb24a0fd1d8acbbbeb371c087728cae6bfc8360258c8d3ed0f1cb2",
    ("rencana-kerja-tahunan", 1): (
        "c7ca4792520dfcdad41cc0e52a0cd00dd2e4f592c6cccf240703c223b0c12408"
    ),
    ("sakip", 1): "87cdc504332b68721956534b993665b03b456a7f78ab3ea76e44878e84b850a6",
    ("pemeliharaan-website", 1): (
        "08412b735f614947bc5f29b731d63c5a370c31bf69a478a80271acf574f578e2"
    ),
    ("konten-website", 1): "481ccaed2838b7ce8d900b904425bbce52547c0959511fa579a3da4af90bb053",
    ("gangguan-jaringan", 1): "a7cbe8d9ce52c504f5750680a4cd5267c215387e45e737986ca335e079d76f52",
    ("wifi-internet", 1): "8cd9ba8c20d41eb62deeda1bbd4850b3f10d3883753439b863b90fd5d564f122",
    ("upgrade-sipp", 1): "d2bbd9c1654eac92db454e36ca94cde8cf24bd17473466b617e5a59ac7d69a5d",
    ("monitoring-sinkronisasi-backup-sipp", 1): (
        "74bcb04150d7e96e82b1c04195a0504cb0fc781226f6d239560897ea60475d07"
    ),
    ("bug-sipp", 1): "16b10937e42eb596711abaa1846d7b069f4e5b43c378322166130241704f1e09",
    ("penghapusan-data-perkara-sipp", 1): (
        "15717163a7506bcc0d62b1586da454cbb2de91fb0063c8a7cdc491c762a4381f"
    ),
}


def test_the_seed_sops_keep_the_hashes_deployments_stored() -> None:
    catalog = load_catalog(CATALOG_DIR)
    found = {(sop.code, sop.version): content_hash(sop) for sop in catalog.sops}
    assert found == SEED_HASHES
    for sop in catalog.sops:
        assert (sop.effective_date, sop.review_months) == (None, 12)
        assert "effective_date" not in stored_content(sop)
        assert "review_months" not in stored_content(sop)


def _catalog_with(tmp_path: Path, lines: str) -> Path:
    """The seed catalog with `lines` added to SOP 07's top level."""
    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, directory, ignore=shutil.ignore_patterns("schema"))
    path = directory / SOP_07
    path.write_text(path.read_text(encoding="utf-8") + lines, encoding="utf-8")
    return directory


def _sop_07(directory: Path) -> SopDefinition:
    return load_catalog(directory).sop("gangguan-jaringan")


@pytest.mark.parametrize("written", ["2025-01-31", '"2025-01-31"'])
def test_an_effective_date_is_read_quoted_or_not_and_changes_the_hash(
    tmp_path: Path, written: str
) -> None:
    sop = _sop_07(_catalog_with(tmp_path, f"effective_date: {written}\nreview_months: 6\n"))
    assert (sop.effective_date, sop.review_months) == (date(2025, 1, 31), 6)
    assert stored_content(sop)["effective_date"] == "2025-01-31"
    assert content_hash(sop) != SEED_HASHES[("gangguan-jaringan", 1)]
    # Stored content reads back as the same definition.
    assert SopDefinition.model_validate(stored_content(sop)) == sop


def test_the_default_interval_written_out_keeps_the_hash(tmp_path: Path) -> None:
    sop = _sop_07(_catalog_with(tmp_path, "review_months: 12\n"))
    assert content_hash(sop) == SEED_HASHES[("gangguan-jaringan", 1)]


@pytest.mark.parametrize(
    ("lines", "field", "message"),
    [
        ("review_months: 0\n", "review_months", "must be at least 1, got number 0"),
        ("review_months: 61\n", "review_months", "must be at most 60, got number 61"),
        ("review_months: 99999999999999999999\n", "review_months", "must be at most 60"),
        ("review_months: dua belas\n", "review_months", "expected an integer"),
        ('effective_date: "2025-02-30"\n', "effective_date", "is not a date of the calendar"),
        ("effective_date: 2025-02-30\n", "$", "invalid date: day is out of range for month"),
        ("effective_date: 31-01-2025\n", "effective_date", "is not an ISO date (YYYY-MM-DD)"),
        ("effective_date: 2025-01-31T08:00:00\n", "effective_date", "expected a string"),
    ],
)
def test_bad_review_fields_are_reported_with_file_and_line(
    tmp_path: Path, lines: str, field: str, message: str
) -> None:
    directory = _catalog_with(tmp_path, lines)
    problems = validate_catalog(directory)
    assert len(problems) == 1, problems
    [problem] = problems
    text = (directory / SOP_07).read_text(encoding="utf-8").splitlines()
    assert problem.file.endswith(SOP_07)
    assert (problem.field, text[problem.line - 1]) == (field, lines.rstrip("\n"))
    assert message in problem.message


def test_the_document_prints_the_effective_date(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog_with(tmp_path, "effective_date: 2025-01-31\n"))
    roles = {role.id: role for role in catalog.roles}
    dated = document.to_html(document.build(catalog.sop("gangguan-jaringan"), roles))
    assert "31 Januari 2025" in dated
    undated = load_catalog(CATALOG_DIR).sop("gangguan-jaringan")
    page = document.to_html(document.build(undated, roles))
    assert "<td>Tanggal pembuatan, revisi, efektif</td><td>-</td>" in page
