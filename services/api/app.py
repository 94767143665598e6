"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from arq import create_pool
from arq.connections import RedisSettings
from fastapi import Depends, FastAPI

from services.api.auth.router import router as auth_router
from services.api.catalog.router import roles_router
from services.api.catalog.router import router as catalog_router
from services.api.console.router import install_console
from services.api.context import AppContext
from services.api.deps import refuse_nul
from services.api.files.router import DOWNLOAD_PATH, UPLOAD_PATH
from services.api.files.router import router as files_router
from services.api.health.router import router as health_router
from services.api.instances.router import router as instances_router
from services.api.instances.tasks_router import router as tasks_router
from services.api.me.router import router as me_router
from services.api.metrics.http import HttpMetrics
from services.api.metrics.router import router as metrics_router
from services.api.middleware import BodyLimit, ConcurrencyLimit, RequestObservability
from services.api.monitors.router import router as monitors_router
from services.api.notifications.router import router as notifications_router
from services.api.openapi import install_openapi, operation_id
from services.api.people.router import router as people_router
from services.api.problems import install_problem_handlers
from services.api.reports.router import jobs_router as report_jobs_router
from services.api.reports.router import router as reports_router
from services.api.reviews.router import router as reviews_router
from services.api.satkers.router import router as satkers_router
from services.api.sipp.router import router as sipp_router
from services.api.webhooks_in.router import router as hooks_router
from services.api.webhooks_out.router import router as webhooks_router
from services.core import migrate
from services.core.auth.keys import KeyRing, ensure_key
from services.core.catalog.loader import load_catalog
from services.core.catalog.service import sync_catalog
from services.core.db import create_engine, session_factory, unit_of_work, utcnow
from services.core.files.storage import FileStore
from services.core.identity.jwks import RemoteJwks
from services.core.identity.tokens import TokenVerifier
from services.core.logging import configure_logging
from services.core.people.acting import ActingRegistry
from services.core.redis import EmbeddedRedis, connect
from services.core.runtime import freeze_startup_heap
from services.core.settings import Settings, get_settings
from services.core.shared import Services
from services.core.work import QUEUE_NAME

log = structlog.get_logger(__name__)


class StartupError(RuntimeError):
    """The service must not start (invalid catalog, database behind the code...)."""


def create_app(settings: Settings | None = None, *, own_process: bool = False) -> FastAPI:
    """The API. `own_process`: the app is all its process serves (`alur serve`), so what
    startup built is frozen out of the garbage collector's walks (tests build many apps
    in one process and leave it alone)."""
    settings = settings or get_settings()
    configure_logging(settings.log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.context = await _start(settings, stack)
            if own_process:
                freeze_startup_heap()
            yield

    app = FastAPI(
        title="Alur",
        summary="Executable Standard Operating Procedures for Indonesian courts",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(refuse_nul)],
        # Alur exports its own Prometheus metrics and logs; FastAPI's built-in OpenTelemetry
        # layer would cost every request without an exporter to feed.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    install_openapi(app)
    app.state.http_metrics = HttpMetrics()
    # Innermost: a request's wait for its turn is part of its logged and measured time.
    app.add_middleware(
        ConcurrencyLimit,
        limit=settings.api.max_concurrent_requests,
        metrics=app.state.http_metrics,
        outside=(UPLOAD_PATH, DOWNLOAD_PATH),
    )
    # Inside the observability middleware, so a refused body is counted and logged.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api.max_body_bytes,
        # A file upload: the file, and room for the form around it.
        larger={UPLOAD_PATH: settings.files.max_file_bytes + 64 * 1024},
    )
    app.add_middleware(RequestObservability, metrics=app.state.http_metrics)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(catalog_router)
    app.include_router(instances_router)
    app.include_router(tasks_router)
    app.include_router(satkers_router)
    app.include_router(sipp_router)
    app.include_router(monitors_router)
    app.include_router(hooks_router)
    app.include_router(webhooks_router)
    app.include_router(people_router)
    app.include_router(notifications_router)
    app.include_router(files_router)
    app.include_router(reports_router)
    app.include_router(report_jobs_router)
    app.include_router(reviews_router)
    app.include_router(auth_router)
    app.include_router(roles_router)
    app.include_router(me_router)
    install_console(app)
    return app


async def _start(settings: Settings, stack: AsyncExitStack) -> AppContext:
    # An invalid catalog raises CatalogInvalid here, naming every file, line and field.
    catalog = load_catalog(settings.catalog.path)

    engine = create_engine(settings)
    stack.push_async_callback(engine.dispose)
    current, head = await migrate.current_revision(engine), migrate.head_revision()
    if current != head:
        raise StartupError(
            f"the database is at migration {current}, this code expects {head}: "
            f"run `alur migrate` first"
        )
    sessions = session_factory(engine)
    # Uploads arrive here before they go to the file store (`services.api.files`).
    (settings.data_dir / "uploads").mkdir(parents=True, exist_ok=True)
    async with unit_of_work(sessions) as session:
        report = await sync_catalog(session, catalog, utcnow())
        await ensure_key(session, settings.auth, utcnow())
    log.info("catalog synced", inserted=report.inserted, current=report.current)
    keys = KeyRing(sessions, settings.auth)
    await keys.refresh()
    remote = None
    if settings.auth.jwks_url is not None:
        remote = RemoteJwks(settings.auth.jwks_url, cache_seconds=settings.auth.jwks_cache_seconds)
        await remote.refresh()

    url = settings.redis.url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        stack.callback(embedded.close)
        url = embedded.url
    redis = connect(url)
    stack.push_async_callback(redis.aclose)
    queue = await create_pool(RedisSettings.from_dsn(url), default_queue_name=QUEUE_NAME)
    stack.push_async_callback(queue.aclose)
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        queue=queue,
        catalog=catalog,
        verifier=TokenVerifier(settings.auth, own_keys=keys, remote_keys=remote),
        services=Services(roles={role.id: role for role in catalog.roles}),
        keys=keys,
        acting=ActingRegistry(sessions),
        files=FileStore.from_settings(settings),
    )
