"""Running the real worker in tests: burst mode on the suite's Redis and database."""

from __future__ import annotations

from arq.connections import RedisSettings, create_pool
from arq.worker import Worker

from services.core.settings import Settings
from services.core.work import QUEUE_NAME
from services.worker.settings import ArqSettings


async def run_burst(settings: Settings) -> None:
    """Process whatever is queued, as a deployed worker would, then return."""
    assert settings.redis.url is not None
    pool = await create_pool(
        RedisSettings.from_dsn(settings.redis.url), default_queue_name=QUEUE_NAME
    )
    try:
        worker = Worker(
            functions=ArqSettings.functions,
            redis_pool=pool,
            queue_name=QUEUE_NAME,
            burst=True,
            on_startup=ArqSettings.on_startup,
            poll_delay=0.05,
            handle_signals=False,
        )
        await worker.main()
        # Not worker.close(): it closes the pool with a call redis deprecates.
        await ArqSettings.on_shutdown(worker.ctx)
    finally:
        await pool.aclose()
