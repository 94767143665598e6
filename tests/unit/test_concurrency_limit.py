"""The admission gate: at most N requests in progress, the others served in arrival order,
probes never kept waiting."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from services.api.metrics.http import HttpMetrics
from services.api.middleware import ConcurrencyLimit
from services.core.settings import ApiSettings


class Held:
    """An app whose requests stay in progress until released, noting who entered when."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.in_progress = 0
        self.most = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered.append(scope["path"])
        self.in_progress += 1
        self.most = max(self.most, self.in_progress)
        try:
            if scope["path"] != "/healthz":
                await self.release.wait()
        finally:
            self.in_progress -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_requests_beyond_the_limit_wait_their_turn_in_order() -> None:
    inner, metrics = Held(), HttpMetrics()
    gate = ConcurrencyLimit(inner, limit=2, metrics=metrics)
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur") as client:
        calls = []
        for n in range(6):
            calls.append(asyncio.create_task(client.get(f"/r{n}")))
            await _settle()  # each arrives after the one before
        assert inner.entered == ["/r0", "/r1"]
        assert metrics.registry.get_sample_value("alur_http_requests_waiting") == 4

        # A probe does not queue behind them.
        probe = await asyncio.wait_for(client.get("/healthz"), timeout=5)
        assert probe.status_code == 200

        inner.release.set()
        answers = await asyncio.gather(*calls)
    assert [answer.status_code for answer in answers] == [200] * 6
    assert inner.entered == ["/r0", "/r1", "/healthz", "/r2", "/r3", "/r4", "/r5"]
    assert inner.most == 2 + 1  # the two admitted, and the probe beside them
    assert metrics.registry.get_sample_value("alur_http_requests_waiting") == 0


async def test_a_failing_request_gives_its_turn_back() -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    gate = ConcurrencyLimit(failing, limit=1, metrics=HttpMetrics())
    transport = httpx.ASGITransport(app=gate, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://alur") as client:
        for _ in range(3):  # would wait for ever if the first kept the one turn
            answer = await asyncio.wait_for(client.get("/r"), timeout=5)
            assert answer.status_code == 500


@pytest.mark.parametrize("value", [0, -1, 10_001])
def test_the_limit_is_a_sane_number(value: int) -> None:
    with pytest.raises(ValidationError):
        ApiSettings(max_concurrent_requests=value)
