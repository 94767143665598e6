"""Logging for the API and the workers: structlog over the standard library.

Everything goes through one root handler, so Alur's own lines and those of uvicorn, arq
and SQLAlchemy share one format: JSON objects, one per line, when `ALUR_LOG__JSON_FORMAT`
is true, a readable console format otherwise. Context bound with
`structlog.contextvars` (the request id, the job) appears on every line written while it
is bound, including lines from libraries.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import Processor

from services.core.settings import LogSettings

REQUEST_ID = "request_id"
_HANDLER_NAME = "alur"
# Libraries whose INFO lines repeat on every probe: Alembic's revision check runs on each
# `/readyz`, httpx logs every monitor check and webhook delivery (recorded anyway).
_QUIETER = ("alembic.runtime.migration", "httpx")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current `sys.stderr`, which may have been replaced since start-up
    (a test runner's capture, a daemon's redirection)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _orjson_dumps(data: Any, **_: Any) -> str:
    # default=str: a stray datetime or UUID in a log call must not lose the line.
    return orjson.dumps(data, default=str).decode()


def configure_logging(settings: LogSettings) -> None:
    """Idempotent: the API factory and each worker call it; the last call wins."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a later configure_logging (tests, `alur dev`) must reach loggers
        # that module imports already created.
        cache_logger_on_first_use=False,
    )
    renderer: list[Processor]
    if settings.json_format:
        renderer = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(_orjson_dumps),
        ]
    else:
        # The console renderer formats exceptions itself (format_exc_info would warn).
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    # uvicorn installs its own handlers before the app exists: hand its lines to ours.
    # Its access log is replaced by the API's request log, which knows the route and id.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    for name in _QUIETER:
        logging.getLogger(name).setLevel(logging.WARNING)


def current_request_id() -> str | None:
    """The id of the request (or of the request behind the job) being handled, if any."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return value if isinstance(value, str) else None
