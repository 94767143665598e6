"""Logging for the API and the workers: structlog over the standard library.

Everything goes through one root handler, so Alur's own lines and those of uvicorn, arq
and SQLAlchemy share one format: JSON objects, one per line, when `ALUR_LOG__JSON_FORMAT`
is true, a readable console format otherwise. Context bound with
`structlog.contextvars` (the request id, the job) appears on every line written while it
is bound, including lines from libraries.

Writing never blocks the event loop: the caller's thread renders a line and queues it
(`QueueHandler`), a thread of its own writes it (`QueueListener`); when the output falls
too far behind, lines are dropped and counted rather than waited for. Tracebacks are
plain, without local variables (they held bearer tokens), and whatever is shaped like a
secret (a JWT, a bearer credential, a `whsec_` secret, a password in a URL) is masked
before a line is written, in every format.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import re
import sys
from logging.handlers import QueueHandler, QueueListener
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
# Libraries that write what they are handed at DEBUG: aiosqlite every call with its
# statement's parameters, secrets among them. Never below INFO, whatever the level.
_NEVER_DEBUG = ("aiosqlite",)
# Lines waiting for the writer thread; beyond this many, new lines are dropped.
QUEUE_SIZE = 10_000
_SECRETS = re.compile(
    r"(?P<jwt>eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2})"
    r"|(?P<bearer>(?i:bearer)\s+)[^\s'\",;]+"
    r"|(?P<whsec>whsec_)[A-Za-z0-9+/=_-]+"
    r"|(?P<userinfo>[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"
)


def _mask(match: re.Match[str]) -> str:
    if match["jwt"]:
        return "[redacted]"
    if match["userinfo"]:
        return f"{match['userinfo']}[redacted]@"
    return f"{match['bearer'] or match['whsec']}[redacted]"


def redact(text: str) -> str:
    """`text` with anything shaped like a token, a webhook secret or a password in a URL
    masked: the last guard, should a secret reach a log line after all."""
    return _SECRETS.sub(_mask, text)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current `sys.stderr`, which may have been replaced since start-up
    (a test runner's capture, a daemon's redirection)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _Redacted(logging.Formatter):
    """The line as the caller's thread rendered it, secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(record.getMessage())


class _Enqueue(QueueHandler):
    """Renders the line in the caller's thread and queues it; drops it when the queue is
    full (the output is stuck or too slow), and says how many were dropped once there is
    room again."""

    def __init__(self, lines: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(lines)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                notice = logging.makeLogRecord(
                    {
                        "name": "alur.logging",
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": f"{self.dropped} log lines dropped: the log output fell behind",
                    }
                )
                self.queue.put_nowait(self.prepare(notice))
                self.dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


class _Writer(QueueListener):
    """The thread writing the queued lines."""

    def __init__(
        self, lines: queue.Queue[logging.LogRecord | None], output: logging.Handler
    ) -> None:
        super().__init__(lines, output)
        self.lines = lines

    def stop(self) -> None:
        """Write what is queued, waiting a few seconds at most (an output that blocks
        must not keep the process from ending)."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self.lines.put(None, timeout=_STOP_SECONDS)  # the listener's sentinel
        self._thread.join(_STOP_SECONDS)
        self._thread = None

    def flush(self, timeout: float) -> None:
        with self.lines.all_tasks_done:
            self.lines.all_tasks_done.wait_for(lambda: not self.lines.unfinished_tasks, timeout)


_STOP_SECONDS = 5.0
_writer: _Writer | None = None


def _stop_writer() -> None:
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(_stop_writer)


def flush_logs(timeout: float = _STOP_SECONDS) -> None:
    """Wait (at most `timeout` seconds) until every line logged so far is written."""
    if _writer is not None:
        _writer.flush(timeout)


def _orjson_dumps(data: Any, **_: Any) -> str:
    # default=str: a stray datetime or UUID in a log call must not lose the line.
    return orjson.dumps(data, default=str).decode()


def configure_logging(settings: LogSettings) -> None:
    """Idempotent: the API factory and each worker call it; the last call wins."""
    global _writer
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
        # The console renderer formats exceptions itself (format_exc_info would warn); by
        # default richly, with every frame's local variables: plainly here.
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    output = _StderrHandler()
    output.setFormatter(_Redacted())
    lines: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_SIZE)
    handler = _Enqueue(lines)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    previous, _writer = _writer, _Writer(lines, output)
    _writer.start()

    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    if previous is not None:
        previous.stop()  # what the previous configuration queued is written
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
    for name in _NEVER_DEBUG:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))


def current_request_id() -> str | None:
    """The id of the request (or of the request behind the job) being handled, if any."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    return value if isinstance(value, str) else None
