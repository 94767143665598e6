"""bpmnlint's recommended rules over the BPMN export of every SOP: no error and no
warning (named gateways, one blank start event, joining gateways where flows meet).

It needs Node.js and `npm ci --prefix tools/bpmnlint` (which `.ci/run` does when npm is
there); without them the test is skipped and says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.core.catalog.bpmn import to_bpmn
from services.core.catalog.loader import load_catalog
from services.core.settings import PROJECT_ROOT

TOOL = PROJECT_ROOT / "tools" / "bpmnlint"
BPMNLINT = TOOL / "node_modules" / ".bin" / "bpmnlint"


@pytest.mark.skipif(
    not BPMNLINT.exists(), reason="bpmnlint not installed: npm ci --prefix tools/bpmnlint"
)
def test_every_sop_passes_bpmnlint_recommended(tmp_path: Path) -> None:
    catalog = load_catalog(PROJECT_ROOT / "sop_catalog")
    roles = {role.id: role for role in catalog.roles}
    files = []
    for sop in catalog.sops:
        path = tmp_path / f"sop-{sop.number:02d}.bpmn"
        path.write_text(to_bpmn(sop, roles))
        files.append(str(path))
    # Run where .bpmnlintrc ({"extends": "bpmnlint:recommended"}) is.
    result = subprocess.run(
        [str(BPMNLINT), *files], cwd=TOOL, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "problem" not in result.stdout, result.stdout
    assert len(files) == 12


@pytest.mark.skipif(not BPMNLINT.exists(), reason="bpmnlint not installed")
def test_bpmnlint_does_report_what_it_should(tmp_path: Path) -> None:
    """The check can fail: a second blank start event is an error to it."""
    catalog = load_catalog(PROJECT_ROOT / "sop_catalog")
    roles = {role.id: role for role in catalog.roles}
    several = next(sop for sop in catalog.sops if len(sop.entry_points) > 1)
    xml = to_bpmn(several, roles)
    broken = tmp_path / "broken.bpmn"
    start = xml.index("<bpmn:messageEventDefinition")
    broken.write_text(xml[:start] + xml[xml.index("/>", start) + 2 :])
    result = subprocess.run(
        [str(BPMNLINT), str(broken)], cwd=TOOL, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "single-blank-start-event" in result.stdout
