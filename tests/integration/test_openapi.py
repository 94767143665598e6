"""The OpenAPI document tells the truth: every error is a problem, with one schema; the
statuses a route answers are the ones it declares; operation ids are readable and stable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.problems import PROBLEM_MEDIA_TYPE, Problem
from tests.support import TokenFactory

OPERATION_IDS = Path(__file__).with_name("operation_ids.txt")
PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# The readiness report answers 503 with its own checks (what probes and operators read).
NOT_PROBLEMS = {("GET", "/readyz", "503")}

Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(spec: dict[str, Any]) -> Iterator[Operation]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _url(path: str, operation: dict[str, Any]) -> str:
    """The path with a value of the right type for each path parameter (found or not)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            value = "1" if parameter["schema"].get("type") == "integer" else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def _assert_declared(
    method: str, path: str, operation: dict[str, Any], answer: httpx.Response
) -> None:
    status = str(answer.status_code)
    assert status in operation["responses"], f"{method} {path} answered undeclared {status}"
    if answer.status_code >= 400 and (method, path, status) not in NOT_PROBLEMS:
        assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE, (method, path)
        Problem.model_validate(answer.json())


async def test_every_error_response_is_a_problem_with_the_one_schema(
    spec: dict[str, Any],
) -> None:
    errors = 0
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (method, path, status) in NOT_PROBLEMS:
                continue
            errors += 1
            assert response["content"] == PROBLEM, f"{method} {path} {status}"
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"]
    assert errors > 200
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    for ref in set(_refs(spec)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_the_problem_schema_documents_the_validation_errors(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "code"}
    assert problem["additionalProperties"] is True
    errors = problem["properties"]["errors"]["anyOf"][0]
    assert errors == {"type": "array", "items": {"$ref": "#/components/schemas/ProblemError"}}
    item = spec["components"]["schemas"]["ProblemError"]
    assert set(item["required"]) == {"location", "message", "type"}


async def test_statuses_follow_dependencies_and_bodies(spec: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return set(spec["paths"][path][method]["responses"])

    # A bearer token and a JSON body; the route's own 404/409/412; a unit of work.
    assert statuses("post", "/v1/instances/{instance_id}/transitions") == {
        "200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "503",
    }  # fmt: skip
    # Public, no parameter: only the database can fail it.
    assert statuses("get", "/v1/sops") == {"200", "503"}
    # An admin route without a body.
    assert statuses("get", "/v1/hook-sources") == {"200", "401", "403", "503"}
    # Authenticated, no database.
    assert statuses("get", "/v1/webhook-event-types") == {"200", "401"}
    assert statuses("get", "/healthz") == {"200"}
    assert statuses("get", "/metrics") == {"200", "401"}


async def test_operation_ids_are_readable_and_stable(spec: dict[str, Any]) -> None:
    found = [f"{method} {path} {op['operationId']}" for method, path, op in operations(spec)]
    ids = [line.rsplit(" ", 1)[1] for line in found]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) for i in ids), ids
    expected = [
        line
        for line in OPERATION_IDS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Generated clients name their functions after these: a change breaks them.
    assert sorted(found) == sorted(expected), "\n".join(sorted(found))


async def test_without_credentials_each_route_answers_what_it_declares(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    for method, path, operation in operations(spec):
        if method != "GET" and not path.startswith("/v1/hooks/"):
            body: dict[str, Any] = {"json": {}}
        else:
            body = {}
        answer = await client.request(method, _url(path, operation), **body)
        _assert_declared(method, path, operation, answer)
        if operation.get("security") and path.startswith("/v1/"):
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["code"] == "token_missing"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bodies_that_are_not_json_are_400_or_415_where_declared(
    client: httpx.AsyncClient, spec: dict[str, Any], auth_headers: TokenFactory
) -> None:
    headers = auth_headers(["admin", "admin_website", "kasubbag_ptip", "staf_ti"])
    checked = 0
    for method, path, operation in operations(spec):
        if "application/json" not in operation.get("requestBody", {}).get("content", {}):
            continue
        url = _url(path, operation)
        json_headers = {**headers, "content-type": "application/json"}
        malformed = await client.request(method, url, content=b'{"title": ', headers=json_headers)
        _assert_declared(method, path, operation, malformed)
        plain = await client.request(
            method, url, content=b"{}", headers={**headers, "content-type": "text/plain"}
        )
        _assert_declared(method, path, operation, plain)
        if "415" in operation["responses"]:
            checked += 1
            assert malformed.status_code == 400, (method, path, malformed.text)
            assert malformed.json()["code"] == "malformed_json"
            assert plain.status_code == 415, (method, path, plain.text)
            assert plain.json()["code"] == "unsupported_media_type"
    assert checked > 15


async def test_malformed_json_is_400_and_stores_nothing(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    headers = auth_headers(["pengguna"])
    before = (await client.get("/v1/instances", headers=headers, params={"limit": 200})).json()
    cut = b'{"sop": "wifi-internet", "title": "Akun",'
    answer = await client.post(
        "/v1/instances", content=cut, headers={**headers, "content-type": "application/json"}
    )
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["code"] == "malformed_json"
    assert problem["type"] == "urn:alur:problem:malformed_json"
    assert problem["detail"].endswith(f"at character {len(cut)}")
    # A JSON body that breaks the schema stays a validation problem, with its errors.
    invalid = await client.post("/v1/instances", json={"sop": "wifi-internet"}, headers=headers)
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [
        {"location": "body.title", "message": "Field required", "type": "missing"}
    ]
    after = (await client.get("/v1/instances", headers=headers, params={"limit": 200})).json()
    assert after == before
