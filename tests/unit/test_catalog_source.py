"""The catalog says what the source documents say.

The tables below are a second, independent transcription of the flow tables (section G)
of `shared/seed/000_3c4653b918006fa0.txt`: per SOP the number of steps, each step's
*waktu* as ISO 8601 (None where the source is illegible or gives no per-step time),
each step's lane, and the decisions with their outcomes. A change to the YAML that
drifts from the source fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.catalog.loader import load_catalog
from services.core.engine.definition import Catalog, SopDefinition, StepKind

CATALOG_DIR = Path(__file__).resolve().parents[2] / "sop_catalog"

D1, D2, D3 = ("P1D", "P1D"), ("P2D", "P2D"), ("P3D", "P3D")
M = {n: (f"PT{n}M", f"PT{n}M") for n in (1, 5, 10, 15, 30, 45, 60)}
H = {n: (f"PT{n}H", f"PT{n}H") for n in (1, 2, 3, 4)}

# number -> (code, [(time (min, max) | None, lane), ...] in step order)
SOURCE: dict[int, tuple[str, list[tuple[tuple[str, str] | None, str]]]] = {
    1: ("rkakl", [
        (D3, "bagian_ptip"), (D1, "sekretaris"), (D1, "bagian_ptip"), (D1, "pt"),
        (D2, "bagian_ptip"), (D2, "bagian_ptip"), (D2, "ma"), (D1, "dja"), (H[4], "dja"),
        (D1, "bagian_ptip"), (M[10], "bagian_ptip"),
    ]),
    2: ("revisi-dipa-pok", [
        (D1, "kasubbag_ptip"), (D2, "kasubbag_ptip"), (M[45], "kasubbag_ptip"),
        (M[30], "sekretaris"), (D1, "kasubbag_ptip"), (M[30], "kasubbag_ptip"),
    ]),
    3: ("rencana-kerja-tahunan", [
        (D2, "staf_ptip"), (M[5], "kasubbag_ptip"), (M[5], "staf_ptip"),
        (M[5], "kasubbag_ptip"), (M[10], "sekretaris"), (M[5], "ketua"),
        (M[1], "kasubbag_ptip"),
    ]),
    4: ("sakip", [
        (D3, "staf_ptip"), (D2, "staf_ptip"), (None, "staf_ptip"), (None, "ketua"),
        (D1, "kasubbag_ptip"), (M[5], "staf_ptip"),
    ]),
    5: ("pemeliharaan-website", [
        (D1, "admin_website"), (D1, "admin_website"), (D1, "admin_website"),
        (H[3], "admin_website"), (D1, "admin_website"), (M[5], "kasubbag_ptip"),
        (H[2], "sekretaris"), (("PT1H", "P3D"), "admin_website"), (H[1], "admin_website"),
    ]),
    6: ("konten-website", [
        (H[3], "pembuat_artikel"), (H[1], "pembuat_artikel"), (M[30], "admin_website"),
        (M[30], "kasubbag_ptip"), (("PT15M", "PT30M"), "admin_website"),
        (("PT15M", "PT30M"), "admin_website"),
    ]),
    7: ("gangguan-jaringan", [
        (M[60], "staf_ti"), (M[60], "staf_ti"), (M[60], "kasubbag_ptip"),
        (M[60], "sekretaris"), (M[60], "umum_keuangan"), (M[60], "umum_keuangan"),
        (M[60], "sekretaris"),
    ]),
    8: ("wifi-internet", [(M[15], "pengguna"), (M[60], "staf_ti"), (M[10], "pengguna")]),
    9: ("upgrade-sipp", [
        (None, "satgas_sipp"), (None, "staf_ti"), (None, "staf_ti"), (None, "staf_ti"),
        (None, "staf_ti"), (None, "satgas_sipp"), (None, "staf_ti"), (None, "staf_ti"),
        (None, "staf_ti"), (None, "staf_ti"),
    ]),
    10: ("monitoring-sinkronisasi-backup-sipp", [(None, "staf_ti")] * 5),
    11: ("bug-sipp", [
        (M[1], "user_sipp"), (M[15], "staf_ti"), (M[15], "staf_ti"), (M[5], "staf_ti"),
        (M[15], "staf_ti"), (M[5], "kasubbag_ptip"), (M[1], "ketua"),
        (M[1], "umum_keuangan"), (M[1], "umum_keuangan"), (M[1], "staf_ti"),
    ]),
    12: ("penghapusan-data-perkara-sipp", [
        (None, "meja_satu"), (M[15], "staf_ti"), (M[15], "staf_ti"), (M[5], "staf_ti"),
        (M[15], "staf_ti"), (M[5], "kasubbag_ptip"), (M[1], "ketua"),
        (M[1], "umum_keuangan"), (M[1], "umum_keuangan"), (None, "staf_ti"),
    ]),
}  # fmt: skip

# number -> {step number: {outcome label: target step number | None (ends)}}
DECISIONS: dict[int, dict[int, dict[str, int | None]]] = {
    6: {3: {"valid": 4, "tidak_valid": 2}},
    7: {2: {"selesai": None, "tidak_selesai": 3}},
    9: {4: {"mandiri": 5, "dibantu_satgas": 6}, 7: {"berhasil": 9, "tidak_berhasil": 8}},
    10: {2: {"berhasil": 4, "tidak_berhasil": 3}},
    11: {2: {"ya": 3, "tidak": 4}},
    12: {2: {"ya": 4, "tidak": 3}},
}

# Procedures with one standard for the whole flow (SOP 09, 10: "1 hari kerja").
PROCEDURE_LEVEL = {9: ("1 hari kerja", "P1D"), 10: ("1 hari kerja", "P1D")}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_DIR)


def _by_number(catalog: Catalog, number: int) -> SopDefinition:
    return next(sop for sop in catalog.sops if sop.number == number)


def test_all_twelve_sops(catalog: Catalog) -> None:
    assert sorted(sop.number for sop in catalog.sops) == list(range(1, 13))
    assert {sop.code for sop in catalog.sops} == {code for code, _ in SOURCE.values()}


@pytest.mark.parametrize("number", sorted(SOURCE))
def test_steps_times_and_lanes(catalog: Catalog, number: int) -> None:
    code, expected = SOURCE[number]
    sop = _by_number(catalog, number)
    assert sop.code == code
    assert [step.number for step in sop.steps] == list(range(1, len(expected) + 1))
    for step, (time, lane) in zip(sop.steps, expected, strict=True):
        standard = step.time_standard
        actual = None if standard is None else (standard.min, standard.max)
        assert actual == time, f"SOP {number} step {step.number} time"
        assert step.lane == lane, f"SOP {number} step {step.number} lane"
        if standard is None:
            assert step.source_note, f"SOP {number} step {step.number} needs a source_note"
        assert step.lane in sop.lanes


@pytest.mark.parametrize("number", sorted(SOURCE))
def test_decisions_and_their_outcomes(catalog: Catalog, number: int) -> None:
    sop = _by_number(catalog, number)
    number_of = {step.id: step.number for step in sop.steps}
    branching = {
        step.number: {
            label: None if target is None else number_of[target]
            for label, target in step.outcomes.items()
        }
        for step in sop.steps
        if step.outcomes is not None
    }
    assert branching == DECISIONS.get(number, {})
    for step in sop.steps:
        if step.kind is StepKind.DECISION:
            assert step.number in branching


@pytest.mark.parametrize("number", sorted(SOURCE))
def test_procedure_level_standard(catalog: Catalog, number: int) -> None:
    sop = _by_number(catalog, number)
    if number in PROCEDURE_LEVEL:
        text, duration = PROCEDURE_LEVEL[number]
        assert sop.time_standard is not None
        assert (sop.time_standard.source_text, sop.time_standard.max) == (text, duration)
    else:
        assert sop.time_standard is None


def test_range_time_standards_keep_the_source_text(catalog: Catalog) -> None:
    troubleshooting = _by_number(catalog, 5).steps[7].time_standard
    assert troubleshooting is not None
    assert troubleshooting.source_text.replace(" ", "") == "1jam-3hari"
    publish = _by_number(catalog, 6).steps[4].time_standard
    assert publish is not None
    assert publish.source_text == "15-30 menit"
    assert publish.is_range


def test_external_steps_belong_to_external_lanes_with_an_internal_owner(catalog: Catalog) -> None:
    roles = {role.id: role for role in catalog.roles}
    external = [(s.number, step) for s in catalog.sops for step in s.steps if step.owner]
    assert external, "the catalog has external steps (high court, MA, DJA, SATGAS SIPP)"
    for _, step in external:
        assert step.kind is StepKind.EXTERNAL
        assert roles[step.lane].external
        assert step.owner is not None
        assert not roles[step.owner].external


def test_sop_05_has_its_routine_renewal_and_incident_entry_points(catalog: Catalog) -> None:
    sop = _by_number(catalog, 5)
    numbers = [sop.step(entry).number for entry in sop.entry_points]
    assert numbers == [1, 4, 5]
