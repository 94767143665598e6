"""Catalog routes: the summary list, one definition (any version), its diagrams."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel

from services.api.catalog.schemas import SopList, SopSummary
from services.api.deps import Context, Session
from services.api.problems import problem_responses
from services.core.catalog import document, service
from services.core.catalog.bpmn import to_bpmn
from services.core.catalog.mermaid import to_mermaid
from services.core.engine.definition import Role, SopDefinition
from services.core.validation import INT32_MAX

router = APIRouter(prefix="/v1/sops", tags=["catalog"])

Version = Annotated[
    int | None, Query(ge=1, le=INT32_MAX, description="A stored version; default current.")
]


@router.get("", response_model=SopList, summary="List the current version of every SOP")
async def list_sops(session: Session) -> SopList:
    items = []
    for record, versions in await service.list_definitions(session):
        definition = SopDefinition.model_validate(record.content)
        items.append(
            SopSummary(
                code=definition.code,
                number=definition.number,
                title=definition.title,
                version=definition.version,
                versions=versions,
                lanes=list(definition.lanes),
                step_count=len(definition.steps),
                entry_points=list(definition.entry_points),
                time_standard=definition.time_standard,
            )
        )
    return SopList(items=items)


@router.get(
    "/{code}",
    response_model=SopDefinition,
    summary="One SOP definition, all sections A–G",
    responses=problem_responses(404),
)
async def get_sop(code: str, session: Session, version: Version = None) -> SopDefinition:
    return await service.get_definition(session, code, version)


DIAGRAM_MEDIA_TYPES = {"mermaid": "text/plain; charset=utf-8", "bpmn": "application/xml"}


@router.get(
    "/{code}/diagram",
    summary="The SOP as a Mermaid flowchart or BPMN 2.0 XML (with diagram layout)",
    name="get_sop_diagram",
    responses={
        200: {"content": {"text/plain": {}, "application/xml": {}}},
        **problem_responses(404),
    },
    response_class=Response,
)
async def get_diagram(
    code: str,
    session: Session,
    format: Annotated[Literal["mermaid", "bpmn"], Query()] = "mermaid",
    version: Version = None,
) -> Response:
    definition = await service.get_definition(session, code, version)
    roles = await service.roles_by_id(session)
    text = to_mermaid(definition, roles) if format == "mermaid" else to_bpmn(definition, roles)
    return Response(content=text, media_type=DIAGRAM_MEDIA_TYPES[format])


@router.get(
    "/{code}/document",
    summary="The SOP as the official document (PermenPAN-RB layout), as PDF or HTML",
    name="get_sop_document",
    responses={
        200: {
            "description": "A4 landscape PDF, or an HTML page a browser prints.",
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **problem_responses(404, 422),
    },
    response_class=Response,
)
async def get_document(
    code: Annotated[str, Path(max_length=64)],
    session: Session,
    format: Annotated[Literal["pdf", "html"], Query()] = "pdf",
    version: Version = None,
) -> Response:
    definition = await service.get_definition(session, code, version)
    roles = await service.roles_by_id(session)
    built = document.build(definition, roles)
    name = f"sop-{definition.number:02d}-{definition.code}-v{definition.version}"
    if format == "html":
        return Response(document.to_html(built), media_type="text/html; charset=utf-8")
    return Response(
        document.to_pdf(built),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


roles_router = APIRouter(prefix="/v1/roles", tags=["catalog"])


class RoleList(BaseModel):
    items: list[Role]


@roles_router.get("", response_model=RoleList, summary="Every role (lane) of the catalog")
async def list_roles(context: Context) -> RoleList:
    return RoleList(items=list(context.services.roles.values()))
