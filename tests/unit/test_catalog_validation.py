"""Catalog validation: every kind of problem is reported with its file, line and field.

Each case edits a small valid catalog and marks the offending line with a `# !` comment,
so the expected line is read from the edited text rather than counted by hand.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from services.core.catalog.loader import (
    SCHEMA_DIR,
    CatalogInvalid,
    CatalogProblem,
    load_catalog,
    validate_catalog,
)
from services.core.engine.definition import Role, SopDefinition, Step, TimeStandard
from services.core.errors import AlurError

REPOSITORY = Path(__file__).resolve().parents[2]
MARK = "# !"
SOP_FILE = "01-contoh.yaml"
ROLES_FILE = "roles.yaml"

BASE_SOP = """\
code: contoh
number: 1
title: Contoh
version: 1
legal_basis: [UU No. 14 Tahun 2008]
related: []
warning: Layanan terganggu
qualifications: [S1 Komputer]
equipment: [Komputer]
records: [Buku log]
lanes: [staf_ti, kasubbag_ptip]
entry_points: [terima]
steps:
  - id: terima
    number: 1
    activity: Terima permintaan
    lane: staf_ti
    kind: task
    time_standard: {source_text: 15-30 menit, min: PT15M, max: PT30M}
    next: periksa
  - id: periksa
    number: 2
    activity: Periksa permintaan
    lane: kasubbag_ptip
    kind: decision
    outcomes:
      setuju: selesai
      tolak: null
  - id: selesai
    number: 3
    activity: Kerjakan
    lane: staf_ti
    kind: task
"""

BASE_ROLES = """\
roles:
  - id: staf_ti
    name: Staf TI
    reports_to: kasubbag_ptip
  - id: kasubbag_ptip
    name: Kasubbag PTIP
  - id: pt
    name: Pengadilan Tinggi
    external: true
"""

# A fourth step reached from `selesai`, for the cases about one step's kind or fields.
FOURTH_STEP = """\
    next: tambahan
  - id: tambahan{mark}
    number: 4
    activity: Langkah tambahan
    lane: {lane}
    kind: {kind}
"""


def edit(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} must occur exactly once"
        text = text.replace(old, new)
    return text


def with_fourth_step(kind: str, lane: str = "staf_ti", extra: str = "", mark: str = "") -> str:
    step = FOURTH_STEP.format(kind=kind, lane=lane, mark=f"  {MARK}" if mark == "step" else "")
    return BASE_SOP + step + extra


def write_catalog(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def marked_line(text: str) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "a case marks exactly one line"
    return lines[0]


def test_the_minimal_catalog_is_valid(tmp_path: Path) -> None:
    catalog = load_catalog(write_catalog(tmp_path, {SOP_FILE: BASE_SOP, ROLES_FILE: BASE_ROLES}))

    assert [role.id for role in catalog.roles] == ["staf_ti", "kasubbag_ptip", "pt"]
    sop = catalog.sop("contoh")
    assert sop.step("periksa").outcomes == {"setuju": "selesai", "tolak": None}
    standard = sop.step("terima").time_standard
    assert standard is not None
    assert (standard.min, standard.max, standard.is_range) == ("PT15M", "PT30M", True)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    field: str
    message: str
    sop: str = BASE_SOP
    roles: str = BASE_ROLES
    file: str = SOP_FILE
    extra_files: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def files(self) -> dict[str, str]:
        return {SOP_FILE: self.sop, ROLES_FILE: self.roles, **self.extra_files}


SCHEMA_CASES = [
    Case(
        "missing required field: line of the enclosing mapping",
        "warning",
        "required field 'warning' is missing",
        sop=edit(
            BASE_SOP,
            ("code: contoh\n", f"code: contoh  {MARK}\n"),
            ("warning: Layanan terganggu\n", ""),
        ),
    ),
    Case(
        "missing step field: line of the step",
        "steps[1].lane",
        "required field 'lane' is missing",
        sop=edit(
            BASE_SOP,
            ("  - id: periksa\n", f"  - id: periksa  {MARK}\n"),
            ("    lane: kasubbag_ptip\n", ""),
        ),
    ),
    Case(
        "unknown field with a close match",
        "steps[2].lanes",
        "unknown field 'lanes'; did you mean 'lane'?",
        sop=BASE_SOP + f"    lanes: staf_ti  {MARK}\n",
    ),
    Case(
        "unknown field lists the allowed ones",
        "steps[2].colour",
        "unknown field 'colour'; allowed: id, number, activity, lane, kind",
        sop=BASE_SOP + f"    colour: red  {MARK}\n",
    ),
    Case(
        "unknown kind",
        "steps[1].kind",
        "'choice' is not one of: task, decision, automated, external",
        sop=edit(BASE_SOP, ("    kind: decision\n", f"    kind: choice  {MARK}\n")),
    ),
    Case(
        "duration that is not ISO 8601",
        "steps[0].time_standard.max",
        "'30 menit' is not an ISO 8601 duration",
        sop=edit(BASE_SOP, ("max: PT30M}\n", f"max: 30 menit}}  {MARK}\n")),
    ),
    Case(
        "version below 1",
        "version",
        "must be at least 1, got number 0",
        sop=edit(BASE_SOP, ("version: 1\n", f"version: 0  {MARK}\n")),
    ),
    Case(
        "code that is not a slug",
        "code",
        "'Contoh SOP' is not a slug",
        sop=edit(BASE_SOP, ("code: contoh\n", f"code: Contoh SOP  {MARK}\n")),
    ),
    Case(
        "wrong type",
        "title",
        "expected a string, got a list",
        sop=edit(BASE_SOP, ("title: Contoh\n", f"title: [Con, toh]  {MARK}\n")),
    ),
    Case(
        "an unquoted date is not text",
        "warning",
        "expected a string, got date 2024-01-01 (quote it",
        sop=edit(BASE_SOP, ("warning: Layanan terganggu\n", f"warning: 2024-01-01  {MARK}\n")),
    ),
    Case(
        "both next and outcomes",
        "steps[1].outcomes",
        "a step has either next or outcomes, not both",
        sop=edit(
            BASE_SOP,
            ("    kind: decision\n", "    kind: decision\n    next: selesai\n"),
            ("    outcomes:\n", f"    outcomes:  {MARK}\n"),
        ),
    ),
    Case(
        "outcome label that is not snake_case",
        "steps[1].outcomes['Tolak Permintaan']",
        "key 'Tolak Permintaan' is not a snake_case identifier",
        sop=edit(BASE_SOP, ("      tolak: null\n", f"      Tolak Permintaan: null  {MARK}\n")),
    ),
    Case(
        "role without a name",
        "roles[2].name",
        "required field 'name' is missing",
        file=ROLES_FILE,
        roles=edit(
            BASE_ROLES,
            ("  - id: pt\n", f"  - id: pt  {MARK}\n"),
            ("    name: Pengadilan Tinggi\n", ""),
        ),
    ),
]

# A value `TODO` (what `alur catalog import` leaves for what BPMN cannot carry) is one
# problem at its line, in place of what the value would otherwise break.
TODO_CASES = [
    Case(
        "a TODO instead of a time standard is not also a type error",
        "steps[0].time_standard",
        "TODO: fill in this value",
        sop=edit(
            BASE_SOP,
            (
                "    time_standard: {source_text: 15-30 menit, min: PT15M, max: PT30M}\n",
                f"    time_standard: TODO  # TODO: waktu  {MARK}\n",
            ),
        ),
    ),
    Case(
        "a TODO lane is not also an unknown role",
        "lanes[2]",
        "TODO: fill in this value",
        sop=edit(
            BASE_SOP,
            (
                "lanes: [staf_ti, kasubbag_ptip]\n",
                f"lanes: [staf_ti, kasubbag_ptip,\n  TODO]  {MARK}\n",
            ),
        ),
    ),
    Case(
        "a TODO list item",
        "records[0]",
        "TODO: fill in this value",
        sop=edit(BASE_SOP, ("records: [Buku log]\n", f"records:\n  - TODO  {MARK}\n")),
    ),
]

GRAPH_CASES = [
    Case(
        "step lane not in the SOP's lanes",
        "steps[1].lane",
        "lane 'pt' is not one of the SOP's lanes (staf_ti, kasubbag_ptip)",
        sop=edit(BASE_SOP, ("    lane: kasubbag_ptip\n", f"    lane: pt  {MARK}\n")),
    ),
    Case(
        "SOP lane that is not a role",
        "lanes[2]",
        "lane 'hakim' is not a role in roles.yaml",
        sop=edit(
            BASE_SOP,
            (
                "lanes: [staf_ti, kasubbag_ptip]\n",
                f"lanes: [staf_ti, kasubbag_ptip, hakim]  {MARK}\n",
            ),
        ),
    ),
    Case(
        "duplicate step id",
        "steps[3].id",
        "duplicate step id 'selesai' (also used by steps[2])",
        sop=BASE_SOP
        + f"  - id: selesai  {MARK}\n    number: 4\n    activity: Lagi\n    lane: staf_ti\n"
        "    kind: task\n",
    ),
    Case(
        "duplicate step number",
        "steps[3].number",
        "duplicate step number 3 (also used by steps[2])",
        sop=edit(with_fourth_step("task"), ("    number: 4\n", f"    number: 3  {MARK}\n")),
    ),
    Case(
        "dangling next",
        "steps[2].next",
        "next step 'arsip' is not a step of this SOP",
        sop=BASE_SOP + f"    next: arsip  {MARK}\n",
    ),
    Case(
        "dangling outcome",
        "steps[1].outcomes.tolak",
        "outcome 'tolak' leads to 'batal', which is not a step of this SOP",
        sop=edit(BASE_SOP, ("      tolak: null\n", f"      tolak: batal  {MARK}\n")),
    ),
    Case(
        "unreachable step",
        "steps[3]",
        "step 'arsip' is not reachable from any entry point (terima)",
        sop=BASE_SOP
        + f"  - id: arsip  {MARK}\n    number: 4\n    activity: Arsip\n    lane: staf_ti\n"
        "    kind: task\n",
    ),
    Case(
        "decision with one outcome",
        "steps[1].outcomes",
        "decision step 'periksa' has 1 outcome(s); a decision needs at least two",
        sop=edit(
            BASE_SOP, ("    outcomes:\n", f"    outcomes:  {MARK}\n"), ("      tolak: null\n", "")
        ),
    ),
    Case(
        "decision without outcomes: line of the step",
        "steps[1].outcomes",
        "decision step 'periksa' has 0 outcome(s)",
        sop=edit(
            BASE_SOP,
            ("  - id: periksa\n", f"  - id: periksa  {MARK}\n"),
            ("    outcomes:\n      setuju: selesai\n      tolak: null\n", "    next: selesai\n"),
        ),
    ),
    Case(
        "outcomes on a task",
        "steps[2].outcomes",
        "a task step cannot have outcomes; only decision and automated steps branch",
        sop=BASE_SOP + f"    outcomes: {{ok: null, gagal: null}}  {MARK}\n",
    ),
    Case(
        "entry point that is not a step",
        "entry_points[1]",
        "entry point 'mulai' is not a step of this SOP",
        sop=edit(
            BASE_SOP, ("entry_points: [terima]\n", f"entry_points: [terima, mulai]  {MARK}\n")
        ),
    ),
    Case(
        "external step in an internal lane",
        "steps[3].lane",
        "external step 'tambahan' is in lane 'staf_ti', which is not an external role "
        "(external roles: pt)",
        sop=edit(
            with_fourth_step("external", extra="    owner: kasubbag_ptip\n"),
            (
                "    lane: staf_ti\n    kind: external\n",
                f"    lane: staf_ti  {MARK}\n    kind: external\n",
            ),
        ),
    ),
    Case(
        "external step without owner",
        "steps[3].owner",
        "external step 'tambahan' has no owner: name the internal role",
        sop=edit(
            with_fourth_step("external", lane="pt", mark="step"),
            ("lanes: [staf_ti, kasubbag_ptip]", "lanes: [staf_ti, kasubbag_ptip, pt]"),
        ),
    ),
    Case(
        "external step owned by an external role",
        "steps[3].owner",
        "owner 'pt' is an external role; the owner must be an internal role",
        sop=edit(
            with_fourth_step("external", lane="pt", extra=f"    owner: pt  {MARK}\n"),
            ("lanes: [staf_ti, kasubbag_ptip]", "lanes: [staf_ti, kasubbag_ptip, pt]"),
        ),
    ),
    Case(
        "external step owned by an unknown role",
        "steps[3].owner",
        "owner 'panitera' is not a role in roles.yaml",
        sop=edit(
            with_fourth_step("external", lane="pt", extra=f"    owner: panitera  {MARK}\n"),
            ("lanes: [staf_ti, kasubbag_ptip]", "lanes: [staf_ti, kasubbag_ptip, pt]"),
        ),
    ),
    Case(
        "owner on a step that is not external",
        "steps[2].owner",
        "only external steps have an owner; this step is a task",
        sop=BASE_SOP + f"    owner: staf_ti  {MARK}\n",
    ),
    Case(
        "automated step without job",
        "steps[3].job",
        "automated step 'tambahan' has no job: name the job that runs it",
        sop=with_fourth_step("automated", mark="step"),
    ),
    Case(
        "job on a step that is not automated",
        "steps[2].job",
        "only automated steps run a job; this step is a task",
        sop=BASE_SOP + f"    job: sipp_backup_check  {MARK}\n",
    ),
    Case(
        "time standard whose min exceeds its max",
        "steps[0].time_standard.min",
        "min 'PT45M' is longer than max 'PT30M'",
        sop=edit(BASE_SOP, ("min: PT15M, max: PT30M}\n", f"min: PT45M, max: PT30M}}  {MARK}\n")),
    ),
    Case(
        "duplicate SOP code in another file",
        "code",
        "SOP code 'contoh' is already defined in ",
        file="02-salinan.yaml",
        extra_files={
            "02-salinan.yaml": edit(
                BASE_SOP,
                ("code: contoh\n", f"code: contoh  {MARK}\n"),
                ("\nnumber: 1\n", "\nnumber: 2\n"),
            )
        },
    ),
    Case(
        "duplicate SOP number in another file",
        "number",
        "SOP number 1 is already defined in ",
        file="02-salinan.yaml",
        extra_files={
            "02-salinan.yaml": edit(
                BASE_SOP,
                ("code: contoh\n", "code: salinan\n"),
                ("\nnumber: 1\n", f"\nnumber: 1  {MARK}\n"),
            )
        },
    ),
    Case(
        "duplicate role id",
        "roles[3].id",
        "duplicate role id 'pt' (also used by roles[2])",
        file=ROLES_FILE,
        roles=BASE_ROLES + f"  - id: pt  {MARK}\n    name: Pengadilan Tinggi lagi\n",
    ),
    Case(
        "reports_to an unknown role",
        "roles[0].reports_to",
        "reports_to 'kabag' is not a role in roles.yaml",
        file=ROLES_FILE,
        roles=edit(
            BASE_ROLES, ("    reports_to: kasubbag_ptip\n", f"    reports_to: kabag  {MARK}\n")
        ),
    ),
    Case(
        "reports_to cycle: reported once, at the first role of the cycle",
        "roles[0].reports_to",
        "reports_to forms a cycle: staf_ti -> kasubbag_ptip -> staf_ti",
        file=ROLES_FILE,
        roles=edit(
            BASE_ROLES,
            ("    reports_to: kasubbag_ptip\n", f"    reports_to: kasubbag_ptip  {MARK}\n"),
            ("    name: Kasubbag PTIP\n", "    name: Kasubbag PTIP\n    reports_to: staf_ti\n"),
        ),
    ),
    Case(
        "role reporting to itself",
        "roles[1].reports_to",
        "reports_to forms a cycle: kasubbag_ptip -> kasubbag_ptip",
        file=ROLES_FILE,
        roles=edit(
            BASE_ROLES,
            (
                "    name: Kasubbag PTIP\n",
                f"    name: Kasubbag PTIP\n    reports_to: kasubbag_ptip  {MARK}\n",
            ),
        ),
    ),
]


@pytest.mark.parametrize("case", SCHEMA_CASES + TODO_CASES + GRAPH_CASES, ids=lambda case: case.id)
def test_each_problem_names_file_line_and_field(tmp_path: Path, case: Case) -> None:
    directory = write_catalog(tmp_path, case.files)

    problems = validate_catalog(directory)

    expected_line = marked_line(case.files[case.file])
    assert [(p.file, p.line, p.field) for p in problems] == [
        (str(directory / case.file), expected_line, case.field)
    ]
    assert case.message in problems[0].message


def test_a_lane_unknown_everywhere_gets_both_problems(tmp_path: Path) -> None:
    sop = edit(BASE_SOP, ("    lane: kasubbag_ptip\n", "    lane: hakim\n"))
    directory = write_catalog(tmp_path, {SOP_FILE: sop, ROLES_FILE: BASE_ROLES})

    messages = [(p.line, p.field, p.message) for p in validate_catalog(directory)]

    assert messages == [
        (
            24,
            "steps[1].lane",
            "lane 'hakim' is not one of the SOP's lanes (staf_ti, kasubbag_ptip)",
        ),
        (24, "steps[1].lane", "lane 'hakim' is not a role in roles.yaml"),
    ]


def test_duplicate_code_message_names_the_first_file(tmp_path: Path) -> None:
    other = edit(BASE_SOP, ("\nnumber: 1\n", "\nnumber: 2\n"))
    directory = write_catalog(
        tmp_path, {SOP_FILE: BASE_SOP, "02-salinan.yaml": other, ROLES_FILE: BASE_ROLES}
    )

    [problem] = validate_catalog(directory)

    assert problem.message == f"SOP code 'contoh' is already defined in {directory / SOP_FILE}"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("code: contoh\n  number: 1\n", 2, "invalid YAML: mapping values are not allowed here"),
        ("code: contoh\nsteps: [a, b\n", 3, "invalid YAML: "),
        ("code: contoh\nnumber: 1\ncode: lain\n", 3, 'invalid YAML: found duplicate key "code"'),
        ("", 1, "the file is empty"),
    ],
    ids=["bad indentation", "unclosed flow sequence", "duplicate key", "empty file"],
)
def test_unparsable_file_is_one_problem_and_others_are_still_checked(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    broken_roles = edit(BASE_ROLES, ("    reports_to: kasubbag_ptip\n", "    reports_to: kabag\n"))
    directory = write_catalog(
        tmp_path, {SOP_FILE: BASE_SOP, "02-rusak.yaml": text, ROLES_FILE: broken_roles}
    )

    problems = validate_catalog(directory)

    assert [(p.file, p.line, p.field) for p in problems] == [
        (str(directory / ROLES_FILE), 4, "roles[0].reports_to"),
        (str(directory / "02-rusak.yaml"), line, "$"),
    ]
    assert problems[1].message.startswith(message)


def test_collects_all_problems_not_just_the_first(tmp_path: Path) -> None:
    sop = edit(
        BASE_SOP,
        ("version: 1\n", "version: zero\n"),  # schema, line 4
        ("    lane: kasubbag_ptip\n", "    lane: pt\n"),  # lanes, line 24
        ("      tolak: null\n", "      tolak: batal\n"),  # dangling, line 28
    )
    roles = edit(BASE_ROLES, ("    reports_to: kasubbag_ptip\n", "    reports_to: kabag\n"))
    directory = write_catalog(
        tmp_path, {SOP_FILE: sop, ROLES_FILE: roles, "02-kosong.yaml": "code: kosong\n"}
    )

    with pytest.raises(CatalogInvalid) as raised:
        load_catalog(directory)

    located = [(Path(p.file).name, p.line, p.field) for p in raised.value.problems]
    assert located[:4] == [
        (ROLES_FILE, 4, "roles[0].reports_to"),
        (SOP_FILE, 4, "version"),
        (SOP_FILE, 24, "steps[1].lane"),
        (SOP_FILE, 28, "steps[1].outcomes.tolak"),
    ]
    # Every required field but `code` is missing from the second SOP, each its own problem.
    assert len(located) == 4 + 12
    assert all(name == "02-kosong.yaml" and line == 1 for name, line, _ in located[4:])


def test_catalog_invalid_is_a_problem_detail_error(tmp_path: Path) -> None:
    directory = write_catalog(tmp_path, {SOP_FILE: BASE_SOP + "    next: arsip\n"})

    with pytest.raises(CatalogInvalid) as raised:
        load_catalog(directory)

    error = raised.value
    assert isinstance(error, AlurError)
    assert (error.code, error.status) == ("catalog_invalid", 422)
    assert error.extra == {
        "problems": [
            f"{directory / ROLES_FILE}:1: $: file not found",
            f"{directory / SOP_FILE}:34: steps[2].next: "
            "next step 'arsip' is not a step of this SOP",
        ]
    }
    assert error.detail.splitlines()[1:] == error.extra["problems"]


def test_problem_renders_as_file_line_field_message() -> None:
    problem = CatalogProblem("sop_catalog/05-x.yaml", 12, "steps[3].lane", "lane 'x' is unknown")

    assert str(problem) == "sop_catalog/05-x.yaml:12: steps[3].lane: lane 'x' is unknown"


def test_file_is_shown_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_catalog(tmp_path / "katalog", {SOP_FILE: BASE_SOP + "    next: arsip\n"})
    write_catalog(tmp_path / "katalog", {ROLES_FILE: BASE_ROLES})
    monkeypatch.chdir(tmp_path)

    [problem] = validate_catalog(tmp_path / "katalog")

    assert problem.file == str(Path("katalog") / SOP_FILE)


MALFORMED = {
    "a list instead of a mapping": "- code: contoh\n",
    "a scalar document": "just text\n",
    "steps not a list": "steps: 5\nlanes: {a: b}\nentry_points: terima\n",
    "steps of scalars": "steps: [1, two, null]\nentry_points: [1]\n",
    "fields of wrong types": (
        "lanes: [[x]]\nentry_points: [{a: 1}]\nsteps:\n"
        "  - {id: [1], number: x, lane: {}, kind: [decision], outcomes: [a], next: {b: 1}}\n"
        "  - {id: a, kind: decision, outcomes: {1: 2, null: [x]}, job: 3, owner: true}\n"
        "  - {id: b, kind: external, lane: 7, time_standard: {min: 1, max: P1D}}\n"
    ),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_data_is_reported_never_crashes(tmp_path: Path, text: str) -> None:
    bad_roles = "roles:\n  - {id: 1, reports_to: [x]}\n  - just text\n  - {id: a, reports_to: a}\n"
    directory = write_catalog(tmp_path, {SOP_FILE: text, ROLES_FILE: bad_roles})

    problems = validate_catalog(directory)

    assert {Path(p.file).name for p in problems} == {SOP_FILE, ROLES_FILE}
    assert all(p.line >= 1 and p.field and p.message for p in problems)


def _schema(name: str) -> dict[str, object]:
    schema: dict[str, object] = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    return schema


@pytest.mark.parametrize("name", ["sop", "roles"])
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    Draft202012Validator.check_schema(_schema(name))


@pytest.mark.parametrize(
    ("model", "pointer"),
    [
        (SopDefinition, ("sop",)),
        (Step, ("sop", "$defs", "step")),
        (TimeStandard, ("sop", "$defs", "time_standard")),
        (Role, ("roles", "$defs", "role")),
    ],
    ids=["sop", "step", "time_standard", "role"],
)
def test_schema_describes_exactly_the_model_fields(
    model: type[BaseModel], pointer: tuple[str, ...]
) -> None:
    node: object = _schema(pointer[0])
    for key in pointer[1:]:
        assert isinstance(node, dict)
        node = node[key]
    assert isinstance(node, dict)

    assert node["additionalProperties"] is False
    assert set(node["properties"]) == set(model.model_fields)
    assert set(node["required"]) == {
        name for name, info in model.model_fields.items() if info.is_required()
    }


# Depends on the data in sop_catalog/, not only on this code: it fails when a SOP file
# (written by hand from the source document) breaks the format or the flow rules.
def test_shipped_sop_catalog_is_valid() -> None:
    problems = validate_catalog(REPOSITORY / "sop_catalog")

    assert [str(problem) for problem in problems] == []
