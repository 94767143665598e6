"""Evidence files in tests: small real documents of each accepted kind, made here."""

from __future__ import annotations

import io
import zlib
from typing import Any

import httpx


def pdf(text: str = "Berita acara") -> bytes:
    """A minimal valid one-page PDF holding `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid grey PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x00\x00\x00\x00"
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.create_sheet("Laporan", 0)
    sheet["A1"] = "Laporan"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# The first bytes of an ELF executable (what `file` calls "ELF 64-bit LSB executable").
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200


async def upload(
    client: httpx.AsyncClient,
    instance_id: str,
    headers: dict[str, str],
    content: bytes,
    name: str = "berita-acara.pdf",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/instances/{instance_id}/files",
        files={"file": (name, content, "application/octet-stream")},
        data=fields,
        headers=headers,
    )


def problem_code(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.json()["code"]
