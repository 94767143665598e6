"""Receiving one evidence file from a `multipart/form-data` body as it streams in.

Starlette's form parser keeps a file part in a spooled temporary file of any size and
hands it over once the whole body is read. Here the part is written to a temporary file
as it arrives, hashed (SHA-256) and counted on the way, and the upload is cut with 413
as soon as it passes the limit, so no disk or memory is spent past it. The media type is
read from the first bytes of the content.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from services.core.errors import AlurError
from services.core.files.media import SNIFF_BYTES, UnsupportedMediaType, detect
from services.core.files.service import FileTooLarge, Upload, clean_name

FILE_FIELD = "file"
FIELD_LIMIT = 200
# The fields a form may carry beside the file, and their largest size.
FIELDS = frozenset({"task"})


class UploadIncomplete(AlurError):
    code = "upload_incomplete"
    status = 400
    title = "The upload ended before the body was complete"


def _invalid(message: str, where: str = "body") -> RequestValidationError:
    return RequestValidationError([{"loc": (where,), "msg": message, "type": "value_error"}])


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Received:
    upload: Upload
    fields: dict[str, str]


class _Receiver:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.fields: dict[str, str] = {}
        self.file: IO[bytes] | None = None
        self.path: Path | None = None
        self.filename: str | None = None
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = bytearray()
        self.media_type: str | None = None
        self.file_done = False

    # python-multipart's callbacks
    def on_part_begin(self) -> None:
        self.part = _Part()
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name")
        if name is None:
            raise _invalid("every part needs a Content-Disposition name")
        self.part.name = name.decode("utf-8", "replace")
        if self.part.name == FILE_FIELD:
            if self.file is not None or self.file_done:
                raise _invalid("send one file per request", FILE_FIELD)
            raw = options.get(b"filename")
            self.filename = clean_name(raw.decode("utf-8", "replace") if raw else "")
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in `receive`)
                dir=self.directory, prefix="upload-", delete=False
            )
            self.file, self.path = handle, Path(handle.name)
        elif self.part.name not in FIELDS:
            raise _invalid(
                f"unknown field {self.part.name[:40]!r}; the form takes `file` and "
                f"optionally {', '.join(sorted(FIELDS))}"
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.part.name != FILE_FIELD:
            if len(self.part.data) + len(chunk) > FIELD_LIMIT:
                raise _invalid(f"at most {FIELD_LIMIT} bytes", self.part.name)
            self.part.data.extend(chunk)
            return
        assert self.file is not None
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise FileTooLarge(
                f"The file is larger than the {self.max_bytes} bytes accepted",
                extra={"limit_bytes": self.max_bytes},
            )
        if self.media_type is None:
            self.head.extend(chunk[: SNIFF_BYTES - len(self.head)])
            if len(self.head) == SNIFF_BYTES:
                # Refused as soon as it is known, not after the whole body.
                self.media_type = detect(bytes(self.head), self.filename or "berkas")
        self.digest.update(chunk)
        self.file.write(chunk)

    def on_part_end(self) -> None:
        if self.part.name == FILE_FIELD:
            assert self.file is not None
            self.file.close()
            self.file, self.file_done = None, True
            return
        try:
            value = self.part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("must be UTF-8 text", self.part.name) from None
        if "\x00" in value:
            raise _invalid("may not contain U+0000", self.part.name)
        self.fields[self.part.name] = value

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive(
    content_type: str | None, body: AsyncIterator[bytes], directory: Path, max_bytes: int
) -> Received:
    """The file part of the body in a temporary file under `directory` (which exists;
    the caller deletes the file) and the other fields; 415 for a body that is not a form
    or content not accepted as evidence, 422 for a form that is not one file, 413 past
    `max_bytes`."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data":
        raise UnsupportedMediaType(
            f"The body is {kind.decode('latin-1')[:60] or 'without a Content-Type'}; send "
            "the file as multipart/form-data with a `file` part"
        )
    if not boundary:
        raise _invalid("multipart/form-data needs a boundary", "header")
    receiver = _Receiver(directory, max_bytes)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
        },
    )
    try:
        try:
            async for chunk in body:
                parser.write(chunk)
        except ClientDisconnect:
            # Nobody is left to read the answer; it is logged as a 400, not an error.
            raise UploadIncomplete(
                f"The client went away after {receiver.size} bytes of the file"
            ) from None
        parser.finalize()
        if not receiver.file_done or receiver.path is None:
            raise _invalid("the form has no `file` part", FILE_FIELD)
        name = receiver.filename or "berkas"
        if receiver.size == 0:
            raise _invalid("the file is empty", FILE_FIELD)
        media_type = receiver.media_type or detect(bytes(receiver.head), name)
    except FormParserError:
        receiver.discard()
        raise _invalid("the body is not valid multipart/form-data") from None
    except BaseException:
        receiver.discard()
        raise
    upload = Upload(
        path=receiver.path,
        name=name,
        media_type=media_type,
        size=receiver.size,
        sha256=receiver.digest.hexdigest(),
    )
    return Received(upload, receiver.fields)
