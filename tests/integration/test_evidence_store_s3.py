"""Evidence files in an S3-compatible bucket: moto's S3 server on 127.0.0.1 stands in for
the court's object store (MinIO, a cloud bucket), spoken to over real HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from services.core.files.storage import content_key
from services.core.settings import Settings
from tests.files_support import pdf, problem_code, upload
from tests.people import CONTENT
from tests.support import serving

BUCKET = "bukti-pn-tais"
KEYS = {"access_key_id": "alur-test", "secret_access_key": "rahasia-uji-saja"}


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def _in_bucket(settings: Settings, endpoint: str) -> Settings:
    options = {"endpoint": endpoint, "region": "us-east-1", **KEYS}
    files = settings.files.model_copy(
        update={
            "store_url": f"s3://{BUCKET}/alur",
            "store_options": {key: SecretStr(value) for key, value in options.items()},
        }
    )
    return settings.model_copy(update={"files": files})


def _keys(endpoint: str) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key_id"],
        aws_secret_access_key=KEYS["secret_access_key"],
    )
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


async def _started(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post(
        "/v1/instances", json={"sop": CONTENT, "title": "Bukti di bucket"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_files_go_to_the_bucket_and_come_back(
    migrated: Settings, auth_headers: Any, s3_endpoint: str
) -> None:
    author = auth_headers(["pembuat_artikel"])
    content = pdf("Laporan backup SIPP")
    digest = hashlib.sha256(content).hexdigest()
    async with serving(_in_bucket(migrated, s3_endpoint)) as (_, client):
        instance_id = await _started(client, author)
        first = await upload(client, instance_id, author, content, "backup.pdf")
        second = await upload(client, instance_id, author, content, "backup-lagi.pdf")
        assert first.status_code == second.status_code == 201, first.text
        assert _keys(s3_endpoint) == [f"alur/{content_key(digest)}"]
        for response in (first, second):
            download = await client.get(f"/v1/files/{response.json()['id']}", headers=author)
            assert download.status_code == 200
            assert download.content == content


async def test_a_bucket_out_of_reach_is_503_and_records_nothing(
    migrated: Settings, auth_headers: Any, s3_endpoint: str
) -> None:
    author = auth_headers(["pembuat_artikel"])
    # Nothing listens on port 9 of loopback (discard): the store cannot be reached.
    gone = _in_bucket(migrated, "http://127.0.0.1:9")
    async with serving(gone) as (_, client):
        instance_id = await _started(client, author)
        response = await upload(client, instance_id, author, pdf())
        assert response.status_code == 503, response.text
        assert problem_code(response) == "unavailable"
        assert response.headers["retry-after"] == "30"
        listed = await client.get(f"/v1/instances/{instance_id}/files", headers=author)
        assert listed.json()["items"] == []
        assert list((migrated.data_dir / "uploads").iterdir()) == []
