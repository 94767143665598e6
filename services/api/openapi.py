"""The OpenAPI document says what the wire does.

Every error response is `application/problem+json` with the one `Problem` schema. A route
declares the problems of its own making (404, 409, 412...) with `problem_responses`; the
ones that come with what it depends on are added here, for every route alike: a
dependency marked `@answers(401)` gives 401 to each route that uses it, directly or
through other dependencies; a JSON body gives 400, 413, 415 and 422; any parameter 422.
Operation ids are the routes' names in camelCase (`start_instance` → `startInstance`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from services.api.problems import Problem, problem_response_doc

F = TypeVar("F", bound=Callable[..., Any])

_STATUSES = "__problem_statuses__"
_BODY_PROBLEMS = (400, 413, 415, 422)
# A form body is parsed by its fields: what is not a form of them is a validation problem.
_FORM_PROBLEMS = (413, 422)
_FASTAPI_DEFAULTS = ("HTTPValidationError", "ValidationError")


def answers(*statuses: int) -> Callable[[F], F]:
    """Mark a dependency: every route that depends on it may answer these problems."""

    def mark(dependency: F) -> F:
        setattr(dependency, _STATUSES, statuses)
        return dependency

    return mark


def operation_id(route: APIRoute) -> str:
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def install_openapi(app: FastAPI) -> None:
    """Complete the document FastAPI generates with each route's problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problems(generate(), app.routes)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension


def document_problems(document: dict[str, Any], routes: list[BaseRoute]) -> None:
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        body = route.body_field
        statuses = derived_problems(
            route.dependant,
            body=None if body is None else "form" if isinstance(body.field_info, Form) else "json",
        )
        for method in route.methods or ():
            operation = document["paths"][route.path_format][method.lower()]
            responses: dict[str, Any] = operation["responses"]
            for status in statuses:
                declared = responses.get(str(status))
                if declared is None or _is_fastapi_default(declared):
                    responses[str(status)] = problem_response_doc(status)
            operation["responses"] = dict(sorted(responses.items()))
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_DEFAULTS:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    document["components"]["schemas"] = dict(sorted(schemas.items()))


def derived_problems(dependant: Dependant, *, body: str | None) -> list[int]:
    statuses: set[int] = set()
    for each in _dependants(dependant):
        statuses.update(getattr(each.call, _STATUSES, ()))
    if body is not None:
        statuses.update(_FORM_PROBLEMS if body == "form" else _BODY_PROBLEMS)
    if get_flat_params(dependant):
        statuses.add(422)
    return sorted(statuses)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _is_fastapi_default(response: dict[str, Any]) -> bool:
    return any(name in str(response.get("content")) for name in _FASTAPI_DEFAULTS)
