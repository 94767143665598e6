"""Evidence files: attached to an instance over HTTP (multipart, streamed), stored once
by content, covered by the audit chain, read back only by readers of the instance, and
named as evidence by transitions."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from starlette.types import Message

from services.core.files.models import EvidenceFileRecord
from services.core.files.storage import content_key
from services.core.settings import Settings
from tests.files_support import ELF, pdf, png, problem_code, upload, xlsx
from tests.people import CONTENT
from tests.support import serving


async def _started(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(
        "/v1/instances", json={"sop": CONTENT, "title": "Berita sidang"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def author(auth_headers: Any) -> dict[str, str]:
    return dict(auth_headers(["pembuat_artikel"], sub="penulis"))


async def test_a_file_is_stored_by_its_content_and_read_back_whole(
    client: httpx.AsyncClient, author: dict[str, str], settings: Settings
) -> None:
    instance = await _started(client, author)
    content = pdf("Notulen rapat 3 Desember 2026")
    response = await upload(client, instance["id"], author, content, name="notulen rapat.pdf")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["media_type"] == "application/pdf"
    assert body["size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["name"] == "notulen rapat.pdf"
    assert body["uploaded_by"] == "penulis"
    assert response.headers["location"] == f"/v1/files/{body['id']}"
    stored = settings.data_dir / "files" / content_key(body["sha256"])
    assert stored.read_bytes() == content

    download = await client.get(f"/v1/files/{body['id']}", headers=author)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["etag"] == f'"{body["sha256"]}"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert "filename*=UTF-8''notulen%20rapat.pdf" in download.headers["content-disposition"]
    again = await client.get(
        f"/v1/files/{body['id']}", headers={**author, "If-None-Match": download.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""

    listed = await client.get(f"/v1/instances/{instance['id']}/files", headers=author)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert listed.json()["total_bytes"] == len(content)
    # No temporary upload is left behind.
    assert list((settings.data_dir / "uploads").iterdir()) == []


async def test_the_audit_chain_covers_the_file_hash(
    client: httpx.AsyncClient, author: dict[str, str]
) -> None:
    instance = await _started(client, author)
    task = instance["tasks"][0]["id"]
    content = png()
    attached = (await upload(client, instance["id"], author, content, "foto.png", task=task)).json()
    assert attached["media_type"] == "image/png"
    assert attached["task_id"] == task

    events = (await client.get(f"/v1/instances/{instance['id']}/events", headers=author)).json()
    [event] = [e for e in events["items"] if e["type"] == "file.attached"]
    assert event["data"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert event["data"]["file_id"] == attached["id"]
    assert event["task_id"] == task
    report = (await client.get(f"/v1/instances/{instance['id']}/audit", headers=author)).json()
    assert report["valid"] is True


async def test_a_transition_names_attached_files_as_its_evidence(
    client: httpx.AsyncClient, author: dict[str, str]
) -> None:
    instance = await _started(client, author)
    other = await _started(client, author)
    mine = (await upload(client, instance["id"], author, xlsx(), "data.xlsx")).json()
    theirs = (await upload(client, other["id"], author, pdf(), "lain.pdf")).json()
    assert mine["media_type"].endswith("spreadsheetml.sheet")

    for foreign in (theirs["id"], "00000000-0000-4000-8000-000000000000"):
        refused = await client.post(
            f"/v1/instances/{instance['id']}/transitions",
            json={"step": "siapkan_sumber_data", "evidence": [foreign]},
            headers=author,
        )
        assert refused.status_code == 422, refused.text
        assert problem_code(refused) == "unknown_evidence_file"
        assert refused.json()["file_ids"] == [foreign]

    done = await client.post(
        f"/v1/instances/{instance['id']}/transitions",
        json={"step": "siapkan_sumber_data", "evidence": [mine["id"], "https://pn-tais.go.id"]},
        headers=author,
    )
    assert done.status_code == 200, done.text
    [completed] = [t for t in done.json()["tasks"] if t["step_id"] == "siapkan_sumber_data"]
    assert completed["evidence"] == [mine["id"], "https://pn-tais.go.id"]


async def test_a_comment_names_attached_files_too(
    client: httpx.AsyncClient, author: dict[str, str]
) -> None:
    instance = await _started(client, author)
    attached = (await upload(client, instance["id"], author, png(), "layar.png")).json()
    url = f"/v1/instances/{instance['id']}/comments"
    unknown = await client.post(
        url,
        json={"text": "Lihat lampiran", "evidence": ["00000000-0000-4000-8000-000000000001"]},
        headers=author,
    )
    assert (unknown.status_code, problem_code(unknown)) == (422, "unknown_evidence_file")
    done = await client.post(
        url, json={"text": "Lihat lampiran", "evidence": [attached["id"]]}, headers=author
    )
    assert done.status_code == 200, done.text
    events = (await client.get(f"/v1/instances/{instance['id']}/events", headers=author)).json()
    [comment] = [e for e in events["items"] if e["type"] == "comment.added"]
    assert comment["data"]["evidence"] == [attached["id"]]


async def test_only_readers_of_the_instance_reach_its_files(
    client: httpx.AsyncClient, author: dict[str, str], auth_headers: Any
) -> None:
    instance = await _started(client, author)
    attached = (await upload(client, instance["id"], author, pdf())).json()
    stranger = auth_headers(["admin"], satker="pn-manna")
    parent = auth_headers(["admin"], satker="pt-bengkulu")

    assert (await client.get(f"/v1/files/{attached['id']}", headers=parent)).status_code == 200
    for response in (
        await client.get(f"/v1/files/{attached['id']}", headers=stranger),
        await client.get(f"/v1/instances/{instance['id']}/files", headers=stranger),
        await upload(client, instance["id"], stranger, pdf()),
    ):
        assert response.status_code == 404, response.text
    assert problem_code(await client.get("/v1/files/not-an-id", headers=author)) == (
        "file_not_found"
    )
    assert (await client.get(f"/v1/files/{attached['id']}")).status_code == 401


@pytest.mark.parametrize(
    ("content", "name", "status", "code"),
    [
        (ELF, "laporan.pdf", 415, "unsupported_media_type"),
        (b"PK\x03\x04" + b"\x00" * 100, "arsip.zip", 415, "unsupported_media_type"),
        (b"\x00\x01\x02binary", "x.bin", 415, "unsupported_media_type"),
        (b"", "kosong.pdf", 422, "validation_error"),
    ],
    ids=["executable", "archive", "binary", "empty"],
)
async def test_content_that_is_not_evidence_is_refused_and_not_kept(
    client: httpx.AsyncClient,
    author: dict[str, str],
    db_session: AsyncSession,
    settings: Settings,
    content: bytes,
    name: str,
    status: int,
    code: str,
) -> None:
    instance = await _started(client, author)
    response = await upload(client, instance["id"], author, content, name)
    assert response.status_code == status, response.text
    assert problem_code(response) == code
    rows = await db_session.scalars(
        select(EvidenceFileRecord).where(col(EvidenceFileRecord.instance_id) == instance["id"])
    )
    assert rows.all() == []
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert not (
        settings.data_dir / "files" / content_key(hashlib.sha256(content).hexdigest())
    ).exists()


async def test_text_is_accepted_as_plain_text(
    client: httpx.AsyncClient, author: dict[str, str]
) -> None:
    instance = await _started(client, author)
    response = await upload(
        client, instance["id"], author, b"Catatan: server dinyalakan ulang.\n", "c.txt"
    )
    assert response.status_code == 201, response.text
    assert response.json()["media_type"] == "text/plain"


@pytest.mark.parametrize(
    ("request_kwargs", "where"),
    [
        ({"files": {"other": ("a.pdf", pdf())}}, "body"),
        (
            {"data": {"task": "x"}, "files": {"file": ("a.pdf", pdf()), "lagi": ("b.pdf", pdf())}},
            "body",
        ),
        (
            {
                "content": b"--b\r\nnot really",
                "headers": {"content-type": "multipart/form-data; boundary=b"},
            },
            "file",
        ),
    ],
    ids=["unknown-field", "second-part", "truncated"],
)
async def test_a_body_that_is_not_one_file_form_is_422(
    client: httpx.AsyncClient,
    author: dict[str, str],
    request_kwargs: dict[str, Any],
    where: str,
) -> None:
    instance = await _started(client, author)
    headers = {**author, **request_kwargs.pop("headers", {})}
    response = await client.post(
        f"/v1/instances/{instance['id']}/files", headers=headers, **request_kwargs
    )
    assert response.status_code == 422, response.text
    assert problem_code(response) == "validation_error"


async def test_a_body_that_is_not_a_form_is_415(
    client: httpx.AsyncClient, author: dict[str, str]
) -> None:
    instance = await _started(client, author)
    for body in ({"json": {"file": "abc"}}, {"content": pdf()}):
        response = await client.post(
            f"/v1/instances/{instance['id']}/files", headers=author, **body
        )
        assert response.status_code == 415, response.text
        assert problem_code(response) == "unsupported_media_type"
        assert "multipart/form-data" in response.json()["detail"]


async def test_a_client_gone_mid_upload_leaves_nothing(
    app: FastAPI, client: httpx.AsyncClient, author: dict[str, str], settings: Settings
) -> None:
    instance = await _started(client, author)
    boundary = "batas"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
    ).encode() + pdf()
    messages: list[Message] = [
        {"type": "http.request", "body": head, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    path = f"/v1/instances/{instance['id']}/files"
    await app(
        {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "server": ("alur.test", 80), "client": ("127.0.0.1", 5000),
            "headers": [
                (b"host", b"alur.test"),
                (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                (b"authorization", author["Authorization"].encode()),
            ],
        },
        receive,
        send,
    )  # fmt: skip
    assert sent[0]["status"] == 400
    assert b"upload_incomplete" in sent[1]["body"]
    assert list((settings.data_dir / "uploads").iterdir()) == []
    listed = await client.get(f"/v1/instances/{instance['id']}/files", headers=author)
    assert listed.json()["items"] == []


async def test_a_closed_instance_takes_no_file(
    client: httpx.AsyncClient, author: dict[str, str], auth_headers: Any
) -> None:
    instance = await _started(client, author)
    cancelled = await client.post(
        f"/v1/instances/{instance['id']}/cancel",
        json={"reason": "duplikat"},
        headers=auth_headers(["admin"]),
    )
    assert cancelled.status_code == 200, cancelled.text
    response = await upload(client, instance["id"], author, pdf())
    assert response.status_code == 409
    assert problem_code(response) == "instance_closed"


async def test_the_same_content_twice_is_stored_once(
    client: httpx.AsyncClient, author: dict[str, str], settings: Settings
) -> None:
    instance = await _started(client, author)
    content = pdf("Sama")
    first = (await upload(client, instance["id"], author, content, "a.pdf")).json()
    second = (await upload(client, instance["id"], author, content, "b.pdf")).json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    folder = settings.data_dir / "files" / content_key(first["sha256"])
    assert [p.name for p in folder.parent.iterdir() if p.name == first["sha256"]] == [
        first["sha256"]
    ]
    for item in (first, second):
        assert (await client.get(f"/v1/files/{item['id']}", headers=author)).content == content


async def test_limits_per_file_and_per_instance(migrated: Settings, auth_headers: Any) -> None:
    limited = migrated.model_copy(
        update={
            "files": migrated.files.model_copy(
                update={"max_file_bytes": 4096, "max_instance_bytes": 6000}
            )
        }
    )
    author = auth_headers(["pembuat_artikel"])
    async with serving(limited) as (_, client):
        instance = await _started(client, author)
        big = pdf() + b"%" + b"x" * 5000
        too_large = await upload(client, instance["id"], author, big)
        assert too_large.status_code == 413
        assert problem_code(too_large) == "file_too_large"
        assert too_large.json()["limit_bytes"] == 4096
        # The declared body far beyond the limit is refused before it is read.
        declared = await client.post(
            f"/v1/instances/{instance['id']}/files",
            content=b"x" * 200_000,
            headers={**author, "content-type": "multipart/form-data; boundary=b"},
        )
        assert declared.status_code == 413

        part = pdf() + b"%" + b"y" * (3500 - len(pdf()))
        assert (await upload(client, instance["id"], author, part)).status_code == 201
        full = await upload(client, instance["id"], author, part.replace(b"y", b"z"))
        assert full.status_code == 413
        assert problem_code(full) == "instance_files_full"
        assert full.json()["used_bytes"] == len(part)
        assert list((migrated.data_dir / "uploads").iterdir()) == []
