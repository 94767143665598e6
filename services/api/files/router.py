"""`POST /v1/instances/{id}/files`, `GET /v1/instances/{id}/files`, `GET /v1/files/{id}`:
evidence files, attached to an instance and read back by those who may read it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from services.api.deps import Context, CurrentActor, Session
from services.api.files.upload import receive
from services.api.problems import problem_responses
from services.core.db import utcnow
from services.core.files import service as files
from services.core.files.service import Upload

router = APIRouter(tags=["files"])

# The upload route, which takes a larger body than the rest (`BodyLimit`) and, like the
# download, moves its bytes outside the gate of requests in progress (`ConcurrencyLimit`):
# a slow phone upload must not hold one of its few places.
UPLOAD_PATH = re.compile(r"^/v1/instances/[^/]+/files$")
DOWNLOAD_PATH = re.compile(r"^/v1/files/[^/]+$")

FileId = Annotated[str, Path(max_length=36)]
InstanceId = Annotated[str, Path(max_length=36)]


class FilePublic(BaseModel):
    id: str = Field(description="Name it in a transition's `evidence`.")
    instance_id: str
    task_id: str | None
    name: str
    media_type: str = Field(description="Detected from the content, not the name.")
    size: int
    sha256: str = Field(description="Hex SHA-256 of the content; also in the audit event.")
    uploaded_by: str
    uploaded_at: datetime


class FileList(BaseModel):
    items: list[FilePublic]
    total_bytes: int


def _public(record: Any) -> FilePublic:
    # A row of `evidence_file` (the API names no table model).
    return FilePublic.model_validate(record, from_attributes=True)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "task": {
                            "type": "string",
                            "maxLength": 36,
                            "description": "An open task of the instance it is evidence for.",
                        },
                    },
                    "additionalProperties": False,
                }
            }
        },
    }
}


@router.post(
    "/v1/instances/{instance_id}/files",
    status_code=status.HTTP_201_CREATED,
    response_model=FilePublic,
    summary="Attach an evidence file (PDF, image, office document, text) to an instance",
    name="attach_file",
    responses=problem_responses(400, 404, 409, 413, 415, 422, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def attach(
    instance_id: InstanceId,
    request: Request,
    actor: CurrentActor,
    context: Context,
    response: Response,
) -> FilePublic:
    limits = context.settings.files
    # Refused before a byte of the body is read: an instance the caller cannot see.
    async with context.unit(read_only=True) as work:
        await files.check_room(work.session, context.services, limits, actor, instance_id, 0)
    received = await receive(
        request.headers.get("content-type"),
        request.stream(),
        context.settings.data_dir / "uploads",
        limits.max_file_bytes,
    )
    upload: Upload = received.upload
    try:
        task = received.fields.get("task")
        async with context.unit(read_only=True) as work:
            await files.check_room(
                work.session, context.services, limits, actor, instance_id, upload.size
            )
        await context.files.put(upload.sha256, upload.path)
        async with context.unit() as work:
            record, applied = await files.attach(
                work.session,
                context.services,
                limits,
                actor,
                instance_id,
                upload,
                task_id=task,
                now=utcnow(),
            )
            work.send(*applied.queued_jobs())
    finally:
        upload.path.unlink(missing_ok=True)
    response.headers["Location"] = f"/v1/files/{record.id}"
    return _public(record)


@router.get(
    "/v1/instances/{instance_id}/files",
    response_model=FileList,
    summary="The evidence files of an instance, oldest first",
    name="list_instance_files",
    responses=problem_responses(404),
)
async def list_files(
    instance_id: InstanceId, actor: CurrentActor, context: Context, session: Session
) -> FileList:
    records = await files.files_of(session, context.services, actor, instance_id)
    return FileList(
        items=[_public(record) for record in records],
        total_bytes=sum(record.size for record in records),
    )


@router.get(
    "/v1/files/{file_id}",
    response_class=StreamingResponse,
    summary="The content of an evidence file (to readers of its instance)",
    name="download_file",
    responses={
        200: {
            "description": "The file's content, as stored, with its `media_type`.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        304: {"description": "Unchanged: the `If-None-Match` names this file's content."},
        **problem_responses(404, 503),
    },
)
async def download(
    file_id: FileId,
    actor: CurrentActor,
    context: Context,
    session: Session,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    record = await files.get(session, context.services, actor, file_id)
    tag = f'"{record.sha256}"'
    headers = {
        "ETag": tag,
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    if if_none_match is not None and tag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    chunks = await context.files.open(record.sha256)
    ascii_name = record.name.encode("ascii", "replace").decode().replace('"', "'")
    headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(record.name)}"
    )
    headers["Content-Length"] = str(record.size)
    return StreamingResponse(chunks, media_type=record.media_type, headers=headers)
