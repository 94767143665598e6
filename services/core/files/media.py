"""What a file is, read from its content (never from the name or the client's word).

Evidence is what an office keeps on paper: scans and photos, PDFs, office documents and
plain text. Anything else (executables, archives, scripts, media) is refused: an archive
or a script cannot be read by the people who check the evidence, and may carry harm.
"""

from __future__ import annotations

import codecs

import filetype

from services.core.errors import AlurError

# How much of the start of a file the detection reads (office documents are ZIP or OLE
# files whose telling names lie in the first few KiB).
SNIFF_BYTES = 8192

ACCEPTED = frozenset(
    {
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/tiff",
        "image/bmp",
        "image/heic",
        "image/avif",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.presentation",
        "application/rtf",
        "text/plain",
    }
)


class UnsupportedMediaType(AlurError):
    code = "unsupported_media_type"
    status = 415
    title = "This kind of file is not accepted as evidence"


def _is_text(head: bytes) -> bool:
    """UTF-8 without control characters other than whitespace (a multi-byte character
    cut at the end of the sample is fine)."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def detect(head: bytes, name: str) -> str:
    """The media type of a file starting with `head` (its first `SNIFF_BYTES`), or
    `UnsupportedMediaType`."""
    kind = filetype.guess(head)
    if kind is not None:
        media_type = str(kind.mime)
    elif head and _is_text(head):
        media_type = "text/plain"
    else:
        media_type = "application/octet-stream"
    if media_type not in ACCEPTED:
        raise UnsupportedMediaType(
            f"{name!r} is {media_type} by its content; evidence may be a PDF, an image, an "
            "office document or plain text",
            extra={"media_type": media_type},
        )
    return media_type
