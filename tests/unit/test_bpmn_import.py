"""`alur catalog import --bpmn`: BPMN 2.0 into a catalog SOP file.

The twelve SOPs go out through the BPMN export and come back with the same steps, lanes
and flows; a file as Camunda Modeler saves it imports to YAML that fails validation on
its TODOs alone, each named by file and line; what the catalog cannot express is refused
with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from services.core.catalog.bpmn import to_bpmn
from services.core.catalog.bpmn_import import BpmnRefused, outcome_key, read_bpmn, slug, to_yaml
from services.core.catalog.loader import load_catalog, validate_catalog
from services.core.engine.definition import Catalog
from services.core.settings import PROJECT_ROOT

CATALOG = PROJECT_ROOT / "sop_catalog"
SAMPLE = PROJECT_ROOT / "tests" / "data" / "pengaduan-jaringan.bpmn"
SOP_NUMBERS = range(1, 13)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG)


def _yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


@pytest.mark.parametrize("number", SOP_NUMBERS, ids=[f"sop-{n:02d}" for n in SOP_NUMBERS])
def test_every_sop_comes_back_from_its_bpmn(catalog: Catalog, number: int) -> None:
    roles = {role.id: role for role in catalog.roles}
    (sop,) = [sop for sop in catalog.sops if sop.number == number]
    imported = read_bpmn(to_bpmn(sop, roles).encode("utf-8"), catalog.roles)
    data = _yaml(to_yaml(imported, source="export.bpmn", code=sop.code, number=sop.number))

    assert (data["code"], data["number"], data["title"]) == (sop.code, sop.number, sop.title)
    used = {step.lane for step in sop.steps}
    assert data["lanes"] == [lane for lane in sop.lanes if lane in used]
    assert data["entry_points"] == list(sop.entry_points)
    expected: list[dict[str, Any]] = [
        {
            "id": step.id,
            "number": step.number,
            "activity": step.activity,
            "lane": step.lane,
            "kind": step.kind.value,
            "next": step.next,
            "outcomes": step.outcomes,
        }
        for step in sorted(sop.steps, key=lambda step: step.number)
    ]
    got = [
        {key: step.get(key) for key in ("id", "number", "activity", "lane", "kind")}
        | {"next": step.get("next"), "outcomes": step.get("outcomes")}
        for step in data["steps"]
    ]
    assert got == expected
    # What BPMN does not carry is left to fill in, for every step.
    for step in data["steps"]:
        assert step["requirements"] == step["time_standard"] == step["output"] == "TODO"
        if step["kind"] == "automated":
            assert step["job"] == "TODO"
        if step["kind"] == "external":
            assert step["owner"] == "TODO"


def test_a_camunda_file_imports_to_yaml_failing_only_on_its_todos(
    catalog: Catalog, tmp_path: Path
) -> None:
    imported = read_bpmn(SAMPLE.read_bytes(), catalog.roles)
    text = to_yaml(imported, source=SAMPLE.name, code="pengaduan-jaringan", number=13)
    data = _yaml(text)

    assert data["title"] == "Pengaduan Gangguan Jaringan"
    # "staf  ti" is Staf TI by name, "KASUBBAG_PTIP" kasubbag_ptip by id; the vendor no role.
    assert data["lanes"] == ["staf_ti", "kasubbag_ptip", "TODO"]
    steps = {step["id"]: step for step in data["steps"]}
    # Numbered in the order of the flow, depth first, outcomes in the order of the file.
    assert [(step["number"], step["id"], step["kind"], step["lane"]) for step in data["steps"]] == [
        (1, "menerima_laporan_gangguan_dari", "task", "staf_ti"),
        (2, "memeriksa_laporan_dan_menentukan", "decision", "kasubbag_ptip"),
        (3, "vendor_memperbaiki_jaringan", "external", "TODO"),
        (4, "memeriksa_jaringan_otomatis", "automated", "staf_ti"),
        (5, "memperbaiki_gangguan", "task", "staf_ti"),
    ]
    assert steps["memeriksa_laporan_dan_menentukan"]["outcomes"] == {
        "perlu_vendor": "vendor_memperbaiki_jaringan",
        "ditangani_sendiri": "memperbaiki_gangguan",
        "bukan_gangguan": None,
        "kurang_data": "menerima_laporan_gangguan_dari",  # through the joining gateway
    }
    assert steps["menerima_laporan_gangguan_dari"]["next"] == "memeriksa_laporan_dan_menentukan"
    assert "next" not in steps["memeriksa_jaringan_otomatis"]
    # The blank start first, then the message start event.
    assert data["entry_points"] == ["menerima_laporan_gangguan_dari", "memeriksa_jaringan_otomatis"]
    assert "# BPMN documentation: Persyaratan: Formulir pengaduan" in text

    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG, directory)
    (directory / "13-pengaduan-jaringan.yaml").write_text(text, encoding="utf-8")
    problems = validate_catalog(directory)
    lines = text.splitlines()
    todo_lines = [
        number
        for number, line in enumerate(lines, 1)
        if ": TODO  # TODO:" in line or "- TODO" in line
    ]
    assert [problem.line for problem in problems] == todo_lines
    assert len(problems) == 25
    for problem in problems:
        assert problem.file.endswith("13-pengaduan-jaringan.yaml")
        assert problem.message.startswith("TODO:")
        assert "TODO" in lines[problem.line - 1]
    path = directory / "13-pengaduan-jaringan.yaml"
    assert any(str(problem).startswith(f"{path}:18: lanes[2]: TODO: ") for problem in problems)

    # Filled in, the file validates.
    filled = (
        text.replace("  - TODO  # TODO: lane", "  - pt  # lane")
        .replace("lane: TODO  # TODO: lane", "lane: pt  # lane")
        .replace("owner: TODO", "owner: staf_ti  #")
        .replace("job: TODO", "job: cek_jaringan  #")
    )
    for key in ("legal_basis", "related", "qualifications", "equipment", "records"):
        filled = filled.replace(f"{key}: TODO", f"{key}: []  #")
    filled = filled.replace("warning: TODO", "warning: Layanan terganggu  #")
    filled = filled.replace("requirements: TODO", "requirements: []  #")
    filled = filled.replace("output: TODO", "output: Laporan  #")
    filled = filled.replace(
        "time_standard: TODO", "time_standard: {source_text: 1 hari, min: P1D, max: P1D}  #"
    )
    (directory / "13-pengaduan-jaringan.yaml").write_text(filled, encoding="utf-8")
    assert validate_catalog(directory) == []


def _document(process: str, *, pools: str = "") -> bytes:
    participants = pools or '<bpmn:participant id="P" name="Uji" processRef="Proc" />'
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="C">{participants}</bpmn:collaboration>
  <bpmn:process id="Proc">
    <bpmn:startEvent id="S" />
    <bpmn:userTask id="A" name="Terima" />
    <bpmn:userTask id="B" name="Periksa" />
    <bpmn:endEvent id="E" />
    <bpmn:sequenceFlow id="F0" sourceRef="S" targetRef="A" />
    {process}
  </bpmn:process>
</bpmn:definitions>""".encode()


def _flow(flow_id: str, source: str, target: str, name: str | None = None) -> str:
    named = f' name="{name}"' if name else ""
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}"{named} />'


REFUSALS = {
    "not XML": (b"this is not xml", "not XML"),
    "not BPMN": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a BPMN 2.0 file"),
    "entities": (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">'
        b"&b;</bpmn:definitions>",
        "DTD or entities",
    ),
    "parallel gateway": (
        _document(
            '<bpmn:parallelGateway id="G" />'
            + _flow("F1", "A", "G")
            + _flow("F2", "G", "B")
            + _flow("F3", "G", "E")
        ),
        "parallel gateway",
    ),
    "inclusive gateway": (_document('<bpmn:inclusiveGateway id="G" />'), "inclusive gateway"),
    "sub-process": (_document('<bpmn:subProcess id="X" name="Sub" />'), "sub-process"),
    "several pools": (
        _document(
            _flow("F1", "A", "E"),
            pools='<bpmn:participant id="P1" name="Satu" processRef="Proc" />'
            '<bpmn:participant id="P2" name="Dua" />',
        ),
        "2 pools",
    ),
    "two flows out of a task": (
        _document(_flow("F1", "A", "B") + _flow("F2", "A", "E") + _flow("F3", "B", "E")),
        "has 2 outgoing flows",
    ),
    "an unnamed outcome": (
        _document(
            '<bpmn:exclusiveGateway id="G" />'
            + _flow("F1", "A", "G")
            + _flow("F2", "G", "B", "ya")
            + _flow("F3", "G", "E")
            + _flow("F4", "B", "E")
        ),
        "sequence flow F3 out of an exclusiveGateway G has no name",
    ),
    "a repeated outcome": (
        _document(
            '<bpmn:exclusiveGateway id="G" />'
            + _flow("F1", "A", "G")
            + _flow("F2", "G", "B", "Ya")
            + _flow("F3", "G", "E", "ya")
            + _flow("F4", "B", "E")
        ),
        "two outgoing flows named 'ya'",
    ),
    "a decision right after another": (
        _document(
            '<bpmn:exclusiveGateway id="G" /><bpmn:exclusiveGateway id="H" />'
            + _flow("F1", "A", "G")
            + _flow("F2", "G", "H", "lagi")
            + _flow("F3", "G", "E", "selesai")
            + _flow("F4", "H", "B", "ya")
            + _flow("F5", "H", "E", "tidak")
            + _flow("F6", "B", "E")
        ),
        "leads to another decision",
    ),
    "a decision after a receive task": (
        _document(
            '<bpmn:receiveTask id="R" name="Balasan" /><bpmn:exclusiveGateway id="G" />'
            + _flow("F1", "A", "R")
            + _flow("F2", "R", "G")
            + _flow("F3", "G", "B", "ya")
            + _flow("F4", "G", "E", "tidak")
            + _flow("F5", "B", "E")
        ),
        "external steps do not branch",
    ),
    "a flow to nowhere": (_document(_flow("F1", "A", "Z")), "connects 'Z'"),
}


@pytest.mark.parametrize(("data", "reason"), REFUSALS.values(), ids=list(REFUSALS))
def test_what_the_catalog_cannot_hold_is_refused(
    catalog: Catalog, data: bytes, reason: str
) -> None:
    with pytest.raises(BpmnRefused, match=reason.replace("(", r"\(")):
        read_bpmn(data, catalog.roles)


def test_a_small_file_imports(catalog: Catalog) -> None:
    """The refusal cases' base document is itself accepted (so they fail for their reason)."""
    imported = read_bpmn(_document(_flow("F1", "A", "B") + _flow("F2", "B", "E")), catalog.roles)
    assert [(step.id, step.number, step.next) for step in imported.steps] == [
        ("terima", 1, "periksa"),
        ("periksa", 2, None),
    ]
    assert imported.entry_points == ("terima",)
    assert imported.steps[0].lane is None
    assert "lane: TODO  # TODO: the task is in no lane" in to_yaml(imported, source="x")


def test_ids_and_outcomes_from_names() -> None:
    assert slug("Menerima & mencatat Laporan (ATK) lalu arsip") == "menerima_mencatat_laporan_atk"
    assert slug("1. Pemeriksaan") == "langkah_1_pemeriksaan"
    assert slug("Évaluasi") == "evaluasi"
    assert outcome_key("Tidak lengkap") == "tidak_lengkap"
    assert outcome_key("2x gagal") == "hasil_2x_gagal"
    assert outcome_key("?!") == ""
