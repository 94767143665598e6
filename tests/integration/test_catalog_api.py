"""The catalog over HTTP: list, definitions, versions, diagrams, problem+json errors."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from services.core.catalog.loader import load_catalog
from services.core.settings import Settings

PROBLEM = "application/problem+json"


async def test_list_has_every_sop_of_the_catalog(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    catalog = load_catalog(settings.catalog.path)
    response = await client.get("/v1/sops")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["code"] for item in items] == [
        sop.code for sop in sorted(catalog.sops, key=lambda sop: sop.number)
    ]
    for item in items:
        sop = catalog.sop(item["code"])
        assert item["step_count"] == len(sop.steps)
        assert item["version"] == sop.version
        assert item["versions"] == [sop.version]
        assert item["lanes"] == list(sop.lanes)


async def test_definition_uses_the_catalog_field_names(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sops/monitoring-sinkronisasi-backup-sipp")
    assert response.status_code == 200
    body = response.json()
    for field in (
        "code", "number", "title", "version", "legal_basis", "related", "warning",
        "qualifications", "equipment", "records", "lanes", "time_standard",
        "entry_points", "steps",
    ):  # fmt: skip
        assert field in body, field
    assert body["time_standard"] == {
        "source_text": "1 hari kerja",
        "min": "P1D",
        "max": "P1D",
        "basis": "working",
    }
    decision = next(step for step in body["steps"] if step["id"] == "cek_keberhasilan")
    assert decision["outcomes"] == {
        "berhasil": "salin_ke_harddisk",
        "tidak_berhasil": "sinkron_backup_manual",
    }


async def test_definition_by_number_and_by_version(client: httpx.AsyncClient) -> None:
    by_number = await client.get("/v1/sops/10")
    by_version = await client.get(
        "/v1/sops/monitoring-sinkronisasi-backup-sipp", params={"version": 1}
    )
    assert by_number.status_code == by_version.status_code == 200
    assert by_number.json() == by_version.json()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/sops/tidak-ada", 404, "sop_not_found"),
        ("/v1/sops/monitoring-sinkronisasi-backup-sipp?version=99", 404, "sop_version_not_found"),
        ("/v1/sops/monitoring-sinkronisasi-backup-sipp?version=nol", 422, "validation_error"),
        (
            "/v1/sops/monitoring-sinkronisasi-backup-sipp/diagram?format=png",
            422,
            "validation_error",
        ),
        ("/v1/tidak-ada", 404, "not_found"),
    ],
)
async def test_errors_are_problem_documents(
    client: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:alur:problem:{code}"
    assert body["title"]
    assert body["detail"]


async def test_unknown_version_lists_the_stored_ones(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sops/monitoring-sinkronisasi-backup-sipp?version=7")
    assert response.json()["versions"] == [1]


async def test_mermaid_diagram(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sops/monitoring-sinkronisasi-backup-sipp/diagram")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("flowchart")
    assert "subgraph" in response.text


async def test_bpmn_diagram_is_xml_with_lanes(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/sops/monitoring-sinkronisasi-backup-sipp/diagram", params={"format": "bpmn"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    assert root.findall(".//bpmn:lane", ns)
    assert root.findall(".//bpmn:exclusiveGateway", ns)


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/sops/{code}/diagram" in spec["paths"]
    not_found = spec["paths"]["/v1/sops/{code}"]["get"]["responses"]["404"]
    assert "application/problem+json" in not_found["content"]
    assert (await client.get("/docs")).status_code == 200
