"""Where the content of evidence files lives: a directory under `ALUR_DATA_DIR` by
default, or any store `obstore` reaches by URL (an S3-compatible bucket in production;
Google Cloud Storage and Azure work the same way).

Content is named by its SHA-256 (`sha256/ab/abcdef…`), written once and never changed:
the same scan attached twice is stored once, and a row of `evidence_file` names the
content it was made for. A write that loses the race to an equal one is not an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import LocalStore, ObjectStore, from_url

from services.core.errors import AlurError, Unavailable
from services.core.settings import Settings


class StoredContentMissing(AlurError):
    code = "file_content_missing"
    status = 500
    title = "The file's content is missing from the file store"


def content_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


@dataclass
class FileStore:
    store: ObjectStore
    where: str

    @classmethod
    def from_settings(cls, settings: Settings) -> FileStore:
        url = settings.files.store_url
        if url is None:
            directory = (settings.data_dir / "files").resolve()
            directory.mkdir(parents=True, exist_ok=True)
            return cls(LocalStore(directory), f"file://{directory}")
        options: dict[str, Any] = {
            key: value.get_secret_value() for key, value in settings.files.store_options.items()
        }
        client: dict[str, Any] = {}
        if str(options.get("endpoint", "")).startswith("http://"):
            client["allow_http"] = True
        if url.startswith("file://"):
            Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        store = from_url(
            url,
            config=cast(Any, options or None),
            client_options=cast(Any, client or None),
        )
        return cls(store, url)

    async def put(self, sha256: str, source: Path) -> None:
        """Store the content of `source` under its hash, unless it is there already."""
        await self._put(content_key(sha256), source, mode="create")

    async def put_report(self, name: str, source: Path) -> None:
        """Store a built report (`reports/<name>`), replacing one of the same name."""
        await self._put(f"reports/{name}", source, mode="overwrite")

    async def open_report(self, name: str) -> AsyncIterator[bytes]:
        return await self._open(f"reports/{name}")

    async def _put(self, key: str, source: Path, *, mode: Literal["create", "overwrite"]) -> None:
        try:
            await obstore.put_async(self.store, key, source, mode=mode)
        except AlreadyExistsError:
            return
        except (OSError, obstore.exceptions.BaseError) as failed:
            raise Unavailable(
                f"The file store ({self.where}) could not take the file: {type(failed).__name__}",
                retry_after=30,
            ) from None

    async def open(self, sha256: str) -> AsyncIterator[bytes]:
        """The content as chunks; `StoredContentMissing` when the store has lost it."""
        return await self._open(content_key(sha256))

    async def _open(self, key: str) -> AsyncIterator[bytes]:
        try:
            result = await obstore.get_async(self.store, key)
        except FileNotFoundError:
            raise StoredContentMissing(f"No {key} in the file store {self.where}") from None
        except (OSError, obstore.exceptions.BaseError) as failed:
            raise Unavailable(
                f"The file store ({self.where}) could not be read: {type(failed).__name__}",
                retry_after=30,
            ) from None

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=256 * 1024):
                yield bytes(chunk)

        return chunks()
