"""The yearly SOP review: the worker opens it once when due, with the SOP's figures for
the period; the Kasubbag (or whoever acts as one) completes it, and the next falls due
`review_months` later. Clocks are fixed relative to when the test database loaded the
catalog (a version loaded over 12 months before "now")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.core.audit.models import OutboxRecord
from services.core.notifications.models import NotificationRecord
from services.core.reviews import service as reviews
from services.core.reviews.schedule import add_months
from services.core.settings import NotifySettings
from services.worker.context import of
from services.worker.notifications import relay_notifications
from services.worker.settings import ArqSettings
from tests.people import add_person
from tests.review_support import (
    SOP,
    ZONE,
    context_of,
    loaded_on,
    morning,
    new_satker,
    open_due,
    person,
    run_sop_07,
)
from tests.support import TokenFactory


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_a_due_review_opens_once_with_the_figures_of_its_period(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    context = context_of(app)
    satker = await new_satker(client, auth_headers)
    loaded_at, loaded = await loaded_on(context)
    runs = await run_sop_07(context, satker, morning(loaded + timedelta(days=20)))
    due = add_months(loaded, 12)

    assert await open_due(context, satker, morning(due - timedelta(days=1))) == []
    now = morning(due)
    [opened] = await open_due(context, satker, now)
    # Run again (a second worker, the next hour): nothing more.
    assert await open_due(context, satker, now) == []
    assert await open_due(context, satker, now + timedelta(days=40)) == []
    assert (opened.sop_code, opened.due_on, opened.state) == (SOP, due, "open")

    head = auth_headers(["kasubbag_ptip"], satker=satker)
    listed = await client.get("/v1/sop-reviews", params={"satker": satker}, headers=head)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [opened.id]
    detail = await client.get(f"/v1/sop-reviews/{opened.id}", headers=head)
    assert detail.status_code == 200, detail.text
    review = detail.json()
    assert (review["period_from"], review["period_to"]) == (loaded.isoformat(), due.isoformat())
    figures = review["performance"]
    first = datetime.combine(loaded, datetime.min.time(), ZONE).astimezone(UTC)
    end = datetime.combine(due + timedelta(days=1), datetime.min.time(), ZONE).astimezone(UTC)
    expected = runs.expected(first, end, now)
    assert {name: figures[name] for name in expected} == expected
    # The runs hold each kind of outcome, so the comparison above meant something.
    assert expected["on_time"] == expected["late"] == 1
    assert expected["open_overdue"] >= 1
    assert figures["on_time_percent"] == 50.0
    step = next(s for s in figures["steps"] if s["number"] == 1)
    assert (step["tasks"], step["on_time"], step["late"], step["open"]) == (3, 1, 1, 1)
    assert figures["period_from"] == loaded.isoformat()
    assert loaded_at < now

    # Filters, and the finding whose outbox row tells the Kasubbag.
    for params, ids in (
        ({"state": "open", "sop": "7"}, [opened.id]),
        ({"state": "completed"}, []),
        ({"sop": "rkakl"}, []),
    ):
        found = await client.get(
            "/v1/sop-reviews", params={"satker": satker, **params}, headers=head
        )
        assert [item["id"] for item in found.json()["items"]] == ids, params
    async with context.unit(read_only=True) as work:
        rows = (
            await work.session.execute(
                sa.select(OutboxRecord.type, OutboxRecord.payload).where(  # type: ignore[call-overload]
                    OutboxRecord.satker_id == satker,
                    OutboxRecord.type.like("sop_review.%"),  # type: ignore[attr-defined]
                )
            )
        ).all()
    assert [(t, p["data"]["review_id"]) for t, p in rows] == [("sop_review.opened", opened.id)]


async def test_completing_a_review_schedules_the_next(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    context = context_of(app)
    satker = await new_satker(client, auth_headers)
    _, loaded = await loaded_on(context)
    await run_sop_07(context, satker, morning(loaded + timedelta(days=3)))
    due = add_months(loaded, 12)
    [first] = await open_due(context, satker, morning(due))

    completed_on = due + timedelta(days=9)
    kasubbag = person(context, satker)
    async with context.unit() as work:
        done = await reviews.complete(
            work.session, context.services, kasubbag, first.id,
            decision="tetap", note=None, now=morning(completed_on),
        )  # fmt: skip
    assert (done.state, done.decision, done.completed_by) == ("completed", "tetap", kasubbag.sub)

    following = add_months(completed_on, 12)
    assert await open_due(context, satker, morning(following - timedelta(days=1))) == []
    [second] = await open_due(context, satker, morning(following))
    assert (second.due_on, second.period_from, second.period_to) == (
        following,
        completed_on,
        following,
    )
    assert second.performance["tasks"] == 0


async def test_only_the_kasubbag_completes_a_review_and_only_once(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    context = context_of(app)
    satker = await new_satker(client, auth_headers)
    _, loaded = await loaded_on(context)
    await run_sop_07(context, satker, morning(loaded + timedelta(days=3)))
    [review] = await open_due(context, satker, morning(add_months(loaded, 12)))
    url = f"/v1/sop-reviews/{review.id}/complete"
    body = {"decision": "revisi", "note": "Waktu langkah 3 terlalu singkat"}

    staf = auth_headers(["staf_ti"], satker=satker)
    _problem(await client.get(f"/v1/sop-reviews/{review.id}", headers=staf), 403, "role_required")
    _problem(await client.post(url, json=body, headers=staf), 403, "role_required")
    # The Sekretaris reads it but does not decide it; another court does not see it.
    sekretaris = auth_headers(["sekretaris"], satker=satker)
    assert (await client.get(f"/v1/sop-reviews/{review.id}", headers=sekretaris)).is_success
    _problem(await client.post(url, json=body, headers=sekretaris), 403, "role_required")
    other = auth_headers(["kasubbag_ptip"], satker="pn-tais")
    _problem(await client.post(url, json=body, headers=other), 404, "review_not_found")
    _problem(
        await client.get(f"/v1/sop-reviews/{review.id}", headers=other), 404, "review_not_found"
    )
    _problem(await client.get("/v1/sop-reviews/tidak-ada", headers=other), 404, "review_not_found")

    head = auth_headers(["kasubbag_ptip"], satker=satker, sub="kasubbag-reviu")
    done = await client.post(url, json=body, headers=head)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["state"], answer["decision"], answer["completed_by"]) == (
        "completed",
        "revisi",
        "kasubbag-reviu",
    )
    today = datetime.now(UTC).astimezone(ZONE).date()
    assert answer["next_due_on"] == add_months(max(today, loaded), 12).isoformat()
    _problem(await client.post(url, json=body, headers=head), 409, "review_closed")
    again = await client.get(f"/v1/sop-reviews/{review.id}", headers=head)
    assert again.json()["note"] == body["note"]


async def test_an_acting_kasubbag_completes_a_review(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    context = context_of(app)
    satker = await new_satker(client, auth_headers)
    _, loaded = await loaded_on(context)
    await run_sop_07(context, satker, morning(loaded + timedelta(days=3)))
    [review] = await open_due(context, satker, morning(add_months(loaded, 12)))
    admin = auth_headers(["admin"], satker=satker)
    plh = await add_person(client, admin, prefix="plh-reviu", roles=("staf_ptip",))
    now = datetime.now(UTC)
    granted = await client.post(
        f"/v1/people/{plh['username']}/acting",
        json={
            "role": "kasubbag_ptip",
            "from": (now - timedelta(minutes=1)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(),
            "reason": "Plh Kasubbag selama cuti",
        },
        headers=admin,
    )
    assert granted.status_code == 201, granted.text
    token = auth_headers(["staf_ptip"], satker=satker, sub=plh["username"])
    done = await client.post(
        f"/v1/sop-reviews/{review.id}/complete", json={"decision": "tetap"}, headers=token
    )
    assert done.status_code == 200, done.text
    assert done.json()["acting_for"]["role"] == "kasubbag_ptip"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"decision": "tetap", "status": "completed"}, "status"),
        ({"decision": "hapus"}, "decision"),
        ({"decision": "tetap", "note": "a\x00b"}, "note"),
        ({"decision": "tetap", "note": 10**30}, "note"),
        ({"decision": "tetap", "note": "x" * 4001}, "note"),
        ({}, "decision"),
    ],
)
async def test_bad_input_is_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory, body: dict[str, Any], where: str
) -> None:
    head = auth_headers(["kasubbag_ptip"])
    answer = await client.post("/v1/sop-reviews/any/complete", json=body, headers=head)
    problem = _problem(answer, 422, "validation_error")
    assert where in answer.text, problem


@pytest.mark.parametrize(
    "query",
    [{"state": "lost"}, {"satker": "x" * 65}, {"sop": "y" * 65}, {"satker": "a\x00"}],
)
async def test_bad_filters_are_422(
    client: httpx.AsyncClient, auth_headers: TokenFactory, query: dict[str, str]
) -> None:
    head = auth_headers(["kasubbag_ptip"])
    answer = await client.get("/v1/sop-reviews", params=query, headers=head)
    _problem(answer, 422, "validation_error")


async def test_an_unknown_sop_filter_is_404_and_the_job_is_registered(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    head = auth_headers(["kasubbag_ptip"])
    answer = await client.get("/v1/sop-reviews", params={"sop": "tidak-ada"}, headers=head)
    _problem(answer, 404, "sop_not_found")
    names = {job.name for job in ArqSettings.cron_jobs}
    assert any("open_sop_reviews" in name for name in names), names


async def test_the_kasubbag_is_told_of_an_opened_review(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: TokenFactory, ctx: dict[str, Any]
) -> None:
    context = context_of(app)
    satker = await new_satker(client, auth_headers)
    admin = auth_headers(["admin"], satker=satker)
    contact = {"password": None, "email": "reviu@pn.example.go.id"}
    head = await add_person(client, admin, prefix="kasubbag", roles=("kasubbag_ptip",), **contact)
    staff = await add_person(client, admin, prefix="staf", roles=("staf_ti",), **contact)
    _, loaded = await loaded_on(context)
    await run_sop_07(context, satker, morning(loaded + timedelta(days=3)))
    now = morning(add_months(loaded, 12))
    [review] = await open_due(context, satker, now)

    worker = of(ctx)
    notify = NotifySettings.model_validate({"base_url": "https://alur.pn.example.go.id/"})
    worker.settings = worker.settings.model_copy(update={"notify": notify})
    await relay_notifications(ctx, now=now)
    table: sa.Table = NotificationRecord.__table__  # type: ignore[attr-defined]
    async with context.unit(read_only=True) as work:
        told = (
            await work.session.execute(
                sa.select(table.c.username, table.c.kind, table.c.subject, table.c.body).where(
                    table.c.satker_id == satker, table.c.event_type == "sop_review.opened"
                )
            )
        ).all()
    assert [(row.username, row.kind) for row in told] == [(head["username"], "review_due")]
    assert told[0].subject.startswith("[Alur] Reviu SOP 07 ")
    assert f"https://alur.pn.example.go.id/v1/sop-reviews/{review.id}" in told[0].body
    assert staff["username"] not in {row.username for row in told}
