"""Request ids: honoured or generated, echoed, on every log line of the request, and on
the log lines of the jobs the request enqueued - through a real queue and worker."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
import uuid
from typing import Any

import httpx
import pytest
import structlog

from services.core.logging import QUEUE_SIZE, configure_logging, flush_logs
from services.core.settings import LogSettings, Settings
from tests.support import TokenFactory
from tests.workers import run_burst


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """structlog's event dicts, as handed to the standard library's handlers."""
    return [dict(record.msg) for record in caplog.records if isinstance(record.msg, dict)]


async def test_request_id_is_honoured_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "edge-7f3a:42"})
    assert given.headers["X-Request-ID"] == "edge-7f3a:42"

    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32

    # Spaces or quotes would end up in log lines and headers: replaced, not echoed.
    odd = await client.get("/healthz", headers={"X-Request-ID": 'a "quoted" id'})
    assert odd.headers["X-Request-ID"] != 'a "quoted" id'
    assert len(odd.headers["X-Request-ID"]) == 32

    problem = await client.get("/nowhere", headers={"X-Request-ID": "edge-404"})
    assert (problem.status_code, problem.headers["X-Request-ID"]) == (404, "edge-404")


async def test_request_log_line_carries_route_and_id(
    client: httpx.AsyncClient, auth_headers: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    with caplog.at_level(logging.INFO):
        response = await client.get(
            "/v1/sops", headers={"X-Request-ID": request_id, **auth_headers(["pengguna"])}
        )
    assert response.status_code == 200
    (line,) = [e for e in _events(caplog) if e.get("request_id") == request_id]
    assert line["event"] == "request"
    assert (line["route"], line["status"], line["method"]) == ("/v1/sops", 200, "GET")


async def test_jobs_log_the_id_of_the_request_that_enqueued_them(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SOP 10 starts with an automated step; without a SIPP configuration for the satker
    the worker flags it for a person and logs why - with the request's id."""
    request_id = f"req-{uuid.uuid4().hex}"
    started = await client.post(
        "/v1/instances",
        json={"sop": "monitoring-sinkronisasi-backup-sipp", "title": "Request id"},
        headers={"X-Request-ID": request_id, **auth_headers(["staf_ti", "admin"])},
    )
    assert started.status_code == 201, started.text
    task_id = started.json()["tasks"][0]["id"]

    with caplog.at_level(logging.INFO):
        await run_burst(settings)

    flagged = [
        e
        for e in _events(caplog)
        if e["event"] == "automated step flagged for a person" and e.get("task") == task_id
    ]
    assert len(flagged) == 1, _events(caplog)
    assert flagged[0]["request_id"] == request_id
    assert flagged[0]["function"] == "run_automated_step"
    assert flagged[0]["job"] == "sipp_scheduled_run"  # the step's job, given explicitly
    assert flagged[0]["job_id"] == f"automated:{task_id}"


def test_json_lines(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(json_format=True))
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-json"):
            structlog.get_logger("alur.test").info("hello", answer=42)
            logging.getLogger("some.library").warning("plain %s", "stdlib")
        flush_logs()  # a thread of its own writes the lines
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging(settings.log)
    ours, theirs = lines
    assert ours["event"] == "hello"
    assert (ours["answer"], ours["request_id"], ours["level"]) == (42, "req-json", "info")
    assert ours["logger"] == "alur.test"
    assert "timestamp" in ours
    # A library's plain logging call comes out as JSON too, with the same context.
    assert (theirs["event"], theirs["request_id"]) == ("plain stdlib", "req-json")


class _StuckOutput(io.StringIO):
    """An output whose writes block until released (a pipe nobody reads, a frozen
    terminal)."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        self.released.wait()
        return super().write(text)


def test_logging_does_not_wait_for_a_stuck_output(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = _StuckOutput()
    monkeypatch.setattr(sys, "stderr", output)
    configure_logging(LogSettings())
    log = structlog.get_logger("alur.test")

    def log_a_lot() -> None:
        for number in range(QUEUE_SIZE + 500):
            log.info("line", number=number)

    caller = threading.Thread(target=log_a_lot)
    try:
        caller.start()
        # Written synchronously, the first line would keep the caller waiting forever.
        caller.join(timeout=60)
        assert not caller.is_alive(), "logging waited for the output"
    finally:
        output.released.set()
        caller.join()
    flush_logs()
    log.info("after")  # the next line, with room again, says what was dropped first
    flush_logs()
    configure_logging(settings.log)
    lines = output.getvalue().splitlines()
    (dropped,) = [int(n) for n in re.findall(r"(\d+) log lines dropped", output.getvalue())]
    written = sum(" line " in line for line in lines)
    # The queue held what it could; the rest was counted, and said once there was room.
    assert dropped > 0
    assert written + dropped == QUEUE_SIZE + 500
    assert "after" in lines[-1]
