"""Notifications reach people: e-mail through a real SMTP server (aiosmtpd), WhatsApp
through a gateway's HTTP API and Telegram's Bot API, both answered by a server on
loopback that checks what the real service documents (method, path, auth, body).

The relay and the sender run with a clock given by the test (a fixed Monday or
Saturday in November 2026): working hours and the digest hour do not depend on when the
suite runs, and messages other tests leave (made on the real clock, due later) are not
taken."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import apprise.plugins.telegram
import apprise.plugins.whatsapp
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.audit.models import OutboxRecord
from services.core.db import unit_of_work
from services.core.instances.deadlines import sweep
from services.core.logging import flush_logs
from services.core.notifications import channels
from services.core.notifications.models import NotificationRecord
from services.core.notifications.texts import Message
from services.core.settings import NotifySettings, WorkerSettings
from services.core.webhooks_out.event_types import BY_TYPE
from services.worker.context import of
from services.worker.notifications import relay_notifications, send_notifications
from tests.notify_support import SmtpServer, new_court, smtp_server, text_of
from tests.people import KASUBBAG_STEP, add_person, at_kasubbag_step
from tests.support import TokenFactory
from tests.webhook_support import Receiver, Reply

# Monday 16 November 2026, 10:00 WIB, and Saturday 21 November, 10:00 WIB.
MONDAY = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
NEXT_MONDAY_OPENING = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 08:00 WIB
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
GATEWAY_KEY = "waha-secret-key-0123456789"
WHEN = re.compile(
    r"\d{1,2} (Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September|Oktober"
    r"|November|Desember) \d{4}, \d{2}\.\d{2} WIB"
)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_server()


@pytest.fixture
def telegram(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """Telegram's Bot API (`https://api.telegram.org/bot<token>/sendMessage`) on loopback."""
    monkeypatch.setattr(
        apprise.plugins.telegram.NotifyTelegram, "notify_url", f"{receiver.base}/bot"
    )
    return receiver


def notify_settings(smtp: SmtpServer | None, gateway: Receiver | None, **extra: Any) -> Any:
    """Settings as a court writes them: an SMTP URL, and chat by Apprise URLs - WhatsApp
    through a WAHA gateway (`POST /api/sendText`, `X-Api-Key`, `{chatId, text,
    session}`), Telegram by bot token."""
    chat: dict[str, str] = {}
    if gateway is not None:
        port = gateway.server_address[1]
        chat["whatsapp"] = (
            f"json://127.0.0.1:{port}/api/sendText?:chatId={{digits}}%40c.us&:message=text"
            "&:title=&:version=&:attachments=&:type=&:session=default"
            f"&+X-Api-Key={GATEWAY_KEY}"
        )
        chat["telegram"] = f"tgram://{BOT_TOKEN}/"
    return NotifySettings.model_validate(
        {
            "smtp_url": smtp.url if smtp else None,
            "from": "Alur PN <alur@pn.example.go.id>",
            "chat_urls": chat,
            "base_url": "https://alur.pn.example.go.id/",
            **extra,
        }
    )


def configure(ctx: dict[str, Any], notify: Any) -> None:
    context = of(ctx)
    context.settings = context.settings.model_copy(update={"notify": notify})


async def drain(ctx: dict[str, Any]) -> None:
    """Settle what earlier tests left in the outbox, with nothing configured: messages
    to their people are made and skipped here, not sent to this test's servers."""
    configure(ctx, NotifySettings())
    await relay_notifications(ctx, now=MONDAY)
    await send_notifications(ctx, now=NEXT_MONDAY_OPENING + timedelta(days=7))


async def messages_to(engine: AsyncEngine, username: str) -> list[Any]:
    table: sa.Table = NotificationRecord.__table__  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(table).where(table.c.username == username).order_by(table.c.id)
        )
        return list(rows.all())


def admin_of(auth_headers: TokenFactory, satker: str) -> dict[str, str]:
    return auth_headers(["admin"], satker=satker, sub=f"admin-{satker}")


async def kasubbag_of_new_court(
    client: httpx.AsyncClient, auth_headers: TokenFactory, prefix: str, **contacts: Any
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A court of this test's own, its admin's headers, and its Kasubbag PTIP."""
    satker = await new_court(client, auth_headers, prefix)
    admin = admin_of(auth_headers, satker)
    kasubbag = await add_person(
        client, admin, prefix="kasubbag", roles=("kasubbag_ptip",), password=None, **contacts
    )
    return satker, admin, kasubbag


async def test_a_task_reaches_its_lane_by_email_whatsapp_and_telegram(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    smtp: SmtpServer,
    telegram: Receiver,
) -> None:
    await drain(ctx)
    satker, admin, kasubbag = await kasubbag_of_new_court(
        client, auth_headers, "pn-kabar",
        email="kasubbag@pn.example.go.id", whatsapp="+6281234567890",
        telegram_chat_id="987654321",
        notify_channels={"task_opened": ["email", "whatsapp", "telegram"]},
    )  # fmt: skip
    instance_id = await at_kasubbag_step(
        client, auth_headers, satker=satker, title="Berita sidang keliling"
    )
    configure(ctx, notify_settings(smtp, telegram))

    made = await relay_notifications(ctx, now=MONDAY)
    assert made >= 3
    assert await relay_notifications(ctx, now=MONDAY) == 0  # nothing twice
    outcomes = await send_notifications(ctx, now=MONDAY)
    assert outcomes.get("email:sent", 0) >= 1
    assert outcomes.get("whatsapp:sent", 0) >= 1

    # E-mail: plain text and HTML, in Indonesian, naming the SOP, step, instance,
    # deadline (local time) and a link.
    (mail,) = smtp.mailbox.to("kasubbag@pn.example.go.id")
    assert mail["From"] == "Alur PN <alur@pn.example.go.id>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Subject"].startswith("[Alur] Tugas baru: ")
    assert "Berita sidang keliling" in mail["Subject"]
    text = text_of(mail, "plain")
    link = f"https://alur.pn.example.go.id/v1/instances/{instance_id}"
    assert "Ada tugas baru untuk Anda." in text
    assert "SOP: 06 " in text
    assert "Langkah: " in text
    assert "Perihal: Berita sidang keliling" in text
    assert WHEN.search(text), text
    assert link in text
    html = text_of(mail, "html")
    assert f'<a href="{link}">' in html

    # WhatsApp through the gateway: POST /api/sendText with its key, to the chat id.
    # (Messages other tests left for their people may arrive too: only ours are read.)
    (sent,) = [r for r in telegram.at("/api/sendText") if "6281234567890" in r.json["chatId"]]
    assert sent.headers["x-api-key"] == GATEWAY_KEY
    assert sent.headers["content-type"].startswith("application/json")
    assert sent.json["chatId"] == "6281234567890@c.us"
    assert sent.json["session"] == "default"
    assert "Perihal: Berita sidang keliling" in sent.json["text"]
    assert link in sent.json["text"]

    # Telegram: POST /bot<token>/sendMessage {chat_id, text}.
    (bot,) = [
        r
        for r in telegram.at(f"/bot{BOT_TOKEN}/sendMessage")
        if str(r.json["chat_id"]) == "987654321"
    ]
    assert "Berita sidang keliling" in bot.json["text"]

    rows = await messages_to(engine, kasubbag["username"])
    assert sorted((r.channel, r.status, r.attempts) for r in rows) == [
        ("email", "sent", 1),
        ("telegram", "sent", 1),
        ("whatsapp", "sent", 1),
    ]
    # The lanes nobody holds in this court were reported, not skipped in silence.
    async with engine.connect() as connection:
        unstaffed = set(
            (
                await connection.execute(
                    sa.text(
                        "SELECT subject FROM finding WHERE type = 'role.unstaffed' "
                        "AND satker_id = :satker"
                    ),
                    {"satker": satker},
                )
            ).scalars()
        )
    assert {"role:pembuat_artikel", "role:admin_website"} <= unstaffed

    # The log over HTTP, and the figures by channel and outcome.
    listed = await client.get(
        "/v1/notifications", params={"person": kasubbag["username"]}, headers=admin
    )
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert {(i["channel"], i["status"], i["kind"]) for i in items} == {
        ("email", "sent", "task_opened"),
        ("whatsapp", "sent", "task_opened"),
        ("telegram", "sent", "task_opened"),
    }
    assert all(i["instance_id"] == instance_id and i["sent_at"] for i in items)
    metrics = (await client.get("/metrics")).text
    sent_email = re.search(r'^alur_notifications\{channel="email",status="sent"\} (\S+)$',
                           metrics, re.M)  # fmt: skip
    assert sent_email
    assert float(sent_email.group(1)) >= 1


async def test_chat_waits_for_working_hours_and_stays_quiet_once_the_task_is_done(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    smtp: SmtpServer,
    telegram: Receiver,
) -> None:
    await drain(ctx)
    satker, _admin, kasubbag = await kasubbag_of_new_court(
        client, auth_headers, "pn-sabtu",
        email="sabtu@pn.example.go.id", whatsapp="+6281200000001",
    )  # fmt: skip
    first = await at_kasubbag_step(client, auth_headers, satker=satker, title="Pengumuman lelang")
    second = await at_kasubbag_step(client, auth_headers, satker=satker, title="Jadwal sidang")
    configure(ctx, notify_settings(smtp, telegram))

    # Saturday morning: e-mail goes at once, WhatsApp waits for Monday's opening.
    await relay_notifications(ctx, now=SATURDAY)
    rows = await messages_to(engine, kasubbag["username"])
    due = {(r.channel, r.instance_id): r.next_attempt_at for r in rows}
    assert len(rows) == 4
    for instance_id in (first, second):
        assert _utc(due[("email", instance_id)]) == SATURDAY
        assert _utc(due[("whatsapp", instance_id)]) == NEXT_MONDAY_OPENING
    await send_notifications(ctx, now=SATURDAY)
    assert len(smtp.mailbox.to("sabtu@pn.example.go.id")) == 2
    assert not [r for r in telegram.at("/api/sendText") if "6281200000001" in r.json["chatId"]]

    # The Kasubbag does the first task over the weekend: its WhatsApp message is dropped.
    done = await client.post(
        f"/v1/instances/{first}/transitions",
        json={"step": KASUBBAG_STEP},
        headers=auth_headers(["kasubbag_ptip"], satker=satker, sub=kasubbag["username"]),
    )
    assert done.status_code == 200, done.text
    await send_notifications(ctx, now=NEXT_MONDAY_OPENING)
    sent = [r for r in telegram.at("/api/sendText") if r.json["chatId"] == "6281200000001@c.us"]
    assert len(sent) == 1
    assert "Jadwal sidang" in sent[0].json["text"]
    state = {
        (r.channel, r.instance_id): (r.status, r.last_error)
        for r in await messages_to(engine, kasubbag["username"])
        if r.kind == "task_opened"
    }
    assert state[("whatsapp", first)] == ("skipped", "the task was done meanwhile")
    assert state[("whatsapp", second)] == ("sent", None)


async def test_one_message_per_event_and_person_whoever_relays_again(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
) -> None:
    satker, _admin, kasubbag = await kasubbag_of_new_court(
        client, auth_headers, "pn-sekali",
        email="sekali@pn.example.go.id",
    )  # fmt: skip
    await at_kasubbag_step(client, auth_headers, satker=satker, title="Sekali saja")
    configure(ctx, notify_settings(None, None))
    await relay_notifications(ctx, now=MONDAY)
    before = await messages_to(engine, kasubbag["username"])
    assert [(r.channel, r.kind) for r in before] == [("email", "task_opened")]

    # Another replica, or a retry after a crash, takes the same outbox rows again.
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE outbox SET notified_at = NULL WHERE satker_id = :satker"),
            {"satker": satker},
        )
    await relay_notifications(ctx, now=MONDAY)
    after = await messages_to(engine, kasubbag["username"])
    assert [r.id for r in after] == [r.id for r in before]


async def test_a_row_the_relay_cannot_read_tells_nobody_and_stops_nothing(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    satker = await new_court(client, auth_headers, "pn-aneh")
    admin = admin_of(auth_headers, satker)
    staff = await add_person(
        client, admin, prefix="staf", roles=("staf_ti", "kasubbag_ptip"), password=None,
        email="aneh@pn.example.go.id",
    )  # fmt: skip
    instance_id = await at_kasubbag_step(
        client, auth_headers, satker=satker, title="Setelah yang aneh"
    )
    # Rows an older or foreign writer left: a website down without its data, a task
    # event without the task.
    odd: list[dict[str, Any]] = [
        {"id": "fnd_odd", "type": "monitor.down", "satker": satker},
        {"id": "evt_odd", "type": "task.opened", "instance_id": instance_id, "data": {}},
    ]
    table: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]
    async with engine.begin() as connection:
        odd_ids = (
            await connection.scalars(
                sa.insert(table).returning(table.c.id),
                [
                    # Published already: no webhook subscriber is sent these.
                    {
                        "satker_id": satker,
                        "type": body["type"],
                        "payload": body,
                        "created_at": MONDAY,
                        "published_at": MONDAY,
                    }
                    for body in odd
                ],
            )
        ).all()
    configure(ctx, notify_settings(None, None))
    try:
        await relay_notifications(ctx, now=MONDAY)
    finally:
        # Other tests check every outbox row against its event's schema.
        async with engine.begin() as connection:
            await connection.execute(sa.delete(table).where(table.c.id.in_(odd_ids)))
    async with engine.connect() as connection:
        waiting = (
            await connection.execute(
                # (role.unstaffed rows the relay itself wrote wait for its next run.)
                sa.text(
                    "SELECT id, type FROM outbox WHERE notified_at IS NULL AND satker_id = :s "
                    "AND type != 'role.unstaffed'"
                ),
                {"s": satker},
            )
        ).all()
    assert waiting == []
    # The good rows around them were told as usual.
    rows = await messages_to(engine, staff["username"])
    assert [(r.kind, r.instance_id) for r in rows] == [("task_opened", instance_id)]
    flush_logs()
    logged = capsys.readouterr()
    assert "event not understood, nobody told" in logged.out + logged.err


async def test_due_soon_items_wait_for_the_daily_digest_as_one_message(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    smtp: SmtpServer,
) -> None:
    satker = await new_court(client, auth_headers, "pn-ringkas")
    admin = admin_of(auth_headers, satker)
    user = await add_person(
        client, admin, prefix="pengguna", roles=("pengguna",), password=None,
        email="ringkas@pn.example.go.id", notify_digest=True,
        notify_channels={"task_opened": []},
    )  # fmt: skip
    # Two WiFi requests opened Monday 09:00 WIB (recorded afterwards, which an admin may
    # do): step 1 (15 working minutes) is the requester's.
    started_at = MONDAY - timedelta(hours=1)
    for title in ("Akun WiFi ruang sidang", "Akun WiFi PTSP"):
        started = await client.post(
            "/v1/instances",
            json={"sop": "wifi-internet", "title": title, "started_at": started_at.isoformat()},
            headers=auth_headers(["pengguna", "admin"], satker=satker, sub=user["username"]),
        )
        assert started.status_code == 201, started.text
    context = of(ctx)
    # 09:14: the warning time has come, the deadline not yet.
    warned = started_at + timedelta(minutes=14)
    async with unit_of_work(context.sessions) as session:
        await sweep(
            session, context.services, warned, multiples=WorkerSettings().escalation_multiples
        )
    configure(ctx, notify_settings(smtp, None))
    await relay_notifications(ctx, now=warned)
    rows = [r for r in await messages_to(engine, user["username"]) if r.kind == "due_soon"]
    assert len(rows) == 2
    assert all(r.digest for r in rows)
    tuesday_8 = datetime(2026, 11, 17, 1, 0, tzinfo=UTC)  # 08:00 WIB
    assert {_utc(r.next_attempt_at) for r in rows} == {tuesday_8}

    await send_notifications(ctx, now=warned)
    assert smtp.mailbox.to("ringkas@pn.example.go.id") == []
    await send_notifications(ctx, now=tuesday_8)
    (digest,) = smtp.mailbox.to("ringkas@pn.example.go.id")
    assert digest["Subject"] == (
        "[Alur] Ringkasan harian 17 November 2026: 2 tugas segera jatuh tempo"
    )
    text = text_of(digest, "plain")
    assert "Akun WiFi ruang sidang" in text
    assert "Akun WiFi PTSP" in text
    assert {r.status for r in await messages_to(engine, user["username"])} == {"sent"}


async def test_a_refusing_gateway_is_retried_then_failed_without_leaking_the_token(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    telegram: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await drain(ctx)
    satker, admin, kasubbag = await kasubbag_of_new_court(
        client, auth_headers, "pn-gagal",
        telegram_chat_id="-100200300", notify_channels={"task_opened": ["telegram"]},
    )  # fmt: skip
    await at_kasubbag_step(client, auth_headers, satker=satker, title="Gagal kirim")
    configure(ctx, notify_settings(None, telegram, retry_schedule=[0, 60]))
    path = f"/bot{BOT_TOKEN}/sendMessage"
    telegram.plan(path, Reply(status=502), Reply(status=502))

    def ours() -> int:
        return len([r for r in telegram.at(path) if str(r.json["chat_id"]) == "-100200300"])

    await relay_notifications(ctx, now=MONDAY)
    await send_notifications(ctx, now=MONDAY)
    (row,) = await messages_to(engine, kasubbag["username"])
    assert (row.status, row.attempts) == ("queued", 1)
    assert _utc(row.next_attempt_at) == MONDAY + timedelta(seconds=60)
    assert "502" in row.last_error

    await send_notifications(ctx, now=MONDAY + timedelta(seconds=59))
    assert ours() == 1  # not before its time
    await send_notifications(ctx, now=MONDAY + timedelta(seconds=60))
    (row,) = await messages_to(engine, kasubbag["username"])
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert ours() == 2

    listed = await client.get(
        "/v1/notifications", params={"status": "failed", "channel": "telegram"}, headers=admin
    )
    assert [i["person"] for i in listed.json()["items"]] == [kasubbag["username"]]
    secret = BOT_TOKEN.split(":")[1]
    assert secret not in listed.text
    assert secret not in (row.last_error or "")
    flush_logs()
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


async def test_with_nothing_configured_messages_are_logged_not_sent(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    satker, _admin, kasubbag = await kasubbag_of_new_court(
        client, auth_headers, "pn-diam",
        email="diam@pn.example.go.id", whatsapp="+6281300000002",
    )  # fmt: skip
    await at_kasubbag_step(client, auth_headers, satker=satker, title="Tanpa server surat")
    configure(ctx, NotifySettings())
    await relay_notifications(ctx, now=MONDAY)
    await send_notifications(ctx, now=NEXT_MONDAY_OPENING)
    rows = await messages_to(engine, kasubbag["username"])
    assert {(r.channel, r.status) for r in rows} == {("email", "skipped"), ("whatsapp", "skipped")}
    assert {r.last_error for r in rows} == {
        "no SMTP server (ALUR_NOTIFY__SMTP_URL)",
        "no whatsapp URL (ALUR_NOTIFY__CHAT_URLS)",
    }
    flush_logs()
    out = capsys.readouterr()
    logged = out.out + out.err
    assert "notification not sent: channel not configured" in logged
    assert "Tanpa server surat" in logged  # what would have gone
    assert "diam@pn.example.go.id" not in logged
    assert "6281300000002" not in logged


async def test_people_read_their_own_log_and_admins_their_courts(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
) -> None:
    satker = await new_court(client, auth_headers, "pn-baca")
    admin = admin_of(auth_headers, satker)
    one = await add_person(
        client, admin, prefix="kasubbag", roles=("kasubbag_ptip",), password=None,
        email="satu@pn.example.go.id",
    )  # fmt: skip
    other = await add_person(
        client, admin, prefix="kasubbag", roles=("kasubbag_ptip",), password=None,
        email="dua@pn.example.go.id",
    )  # fmt: skip
    for title in ("Satu", "Dua", "Tiga"):
        await at_kasubbag_step(client, auth_headers, satker=satker, title=title)
    configure(ctx, NotifySettings())
    await relay_notifications(ctx, now=MONDAY)

    own = auth_headers(["kasubbag_ptip"], satker=satker, sub=one["username"])
    mine = await client.get("/v1/notifications", headers=own)
    assert mine.status_code == 200, mine.text
    assert {i["person"] for i in mine.json()["items"]} == {one["username"]}
    assert len(mine.json()["items"]) == 3
    theirs = await client.get(
        "/v1/notifications", params={"person": other["username"]}, headers=own
    )
    assert (theirs.status_code, theirs.json()["code"]) == (404, "person_not_found")

    # Pages of two, newest first, for the admin of the court and of the high court.
    for headers in (admin, auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt")):
        seen: list[int] = []
        params: dict[str, Any] = {"person": other["username"], "limit": 2}
        while True:
            page = await client.get("/v1/notifications", params=params, headers=headers)
            assert page.status_code == 200, page.text
            seen += [i["id"] for i in page.json()["items"]]
            if page.json()["next_before"] is None:
                break
            params["before"] = page.json()["next_before"]
        assert len(seen) == 3
        assert seen == sorted(seen, reverse=True)
    # Another district court's admin does not see this court's people.
    elsewhere = await client.get(
        "/v1/notifications",
        params={"person": one["username"]},
        headers=auth_headers(["admin"], satker="pn-tais", sub="admin-tais"),
    )
    assert elsewhere.status_code == 404

    for params in (
        {"status": "lost"},
        {"channel": "sms"},
        {"limit": 201},
        {"limit": 0},
        {"before": 2**63},
        {"person": "x\x00y"},
        {"person": "A" * 300},
    ):
        bad = await client.get("/v1/notifications", params=params, headers=admin)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_a_person_chooses_channels_per_kind_and_nonsense_is_refused(
    client: httpx.AsyncClient, auth_headers: TokenFactory
) -> None:
    satker = await new_court(client, auth_headers, "pn-pilih")
    admin = admin_of(auth_headers, satker)
    person = await add_person(client, admin, prefix="staf", password=None)
    own = auth_headers(["staf_ti"], satker=satker, sub=person["username"])
    url = f"/v1/people/{person['username']}"
    chosen = {"overdue": ["whatsapp", "email"], "monitor_up": []}
    changed = await client.patch(
        url, json={"notify_channels": chosen, "notify_digest": True}, headers=own
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["notify_channels"] == chosen
    assert changed.json()["notify_digest"] is True
    for bad in (
        {"notify_channels": {"gossip": ["email"]}},
        {"notify_channels": {"overdue": ["sms"]}},
        {"notify_channels": {"overdue": "email"}},
        {"notify_channels": ["email"]},
        {"notify_digest": "sometimes"},
    ):
        refused = await client.patch(url, json=bad, headers=own)
        assert refused.status_code == 422, (bad, refused.text)
        assert json.loads(refused.text)["code"]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def test_a_website_down_reaches_the_operations_roles(
    client: httpx.AsyncClient,
    auth_headers: TokenFactory,
    ctx: dict[str, Any],
    engine: AsyncEngine,
) -> None:
    satker = await new_court(client, auth_headers, "pn-situs")
    admin = admin_of(auth_headers, satker)
    staff = await add_person(
        client, admin, prefix="staf", roles=("staf_ti",), password=None,
        email="staf@pn.example.go.id",
    )  # fmt: skip
    clerk = await add_person(
        client, admin, prefix="umum", roles=("umum_keuangan",), password=None,
        email="umum@pn.example.go.id",
    )  # fmt: skip
    # The event as the webhook catalog documents it, for this court.
    body = {**BY_TYPE["monitor.down"].example, "id": f"fnd_{satker}", "satker": satker}
    table: sa.Table = OutboxRecord.__table__  # type: ignore[attr-defined]
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(table),
            {"satker_id": satker, "type": "monitor.down", "payload": body,
             "created_at": MONDAY, "published_at": MONDAY},
        )  # fmt: skip
    configure(ctx, notify_settings(None, None))
    await relay_notifications(ctx, now=MONDAY)
    (told,) = await messages_to(engine, staff["username"])
    assert (told.kind, told.channel, told.task_id) == ("monitor_down", "email", None)
    assert told.subject == f"[Alur] Situs tidak dapat diakses: {body['data']['url']}"
    assert "WIB" in told.body
    assert await messages_to(engine, clerk["username"]) == []


async def test_whatsapp_through_the_cloud_api(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Meta's WhatsApp Cloud API: `POST /{version}/{phone number id}/messages` with the
    bearer token, `{messaging_product: whatsapp, to, type: text, text: {body}}`."""
    monkeypatch.setattr(
        apprise.plugins.whatsapp.NotifyWhatsApp,
        "notify_url",
        receiver.base + "/{fb_ver}/{phone_id}/messages",
    )
    settings = NotifySettings.model_validate(
        {"chat_urls": {"whatsapp": "whatsapp://EAAcloudToken0123456789@105954558954427"}}
    )
    message = Message("[Alur] Tugas baru: Uji", "Ada tugas baru untuk Anda.\n")
    outcome = await channels.send_chat(settings, "whatsapp", "+6281234567890", message)
    assert outcome.sent, outcome.error
    (request,) = receiver.received
    assert re.fullmatch(r"/v\d+\.\d+/105954558954427/messages", request.path), request.path
    assert request.headers["authorization"] == "Bearer EAAcloudToken0123456789"
    assert request.json["messaging_product"] == "whatsapp"
    assert request.json["to"] == "+6281234567890"
    assert request.json["type"] == "text"
    assert "Ada tugas baru untuk Anda." in request.json["text"]["body"]

    receiver.plan(request.path, Reply(status=401))
    refused = await channels.send_chat(settings, "whatsapp", "+6281234567890", message)
    assert not refused.sent
    assert refused.error is not None
    assert "EAAcloudToken0123456789" not in refused.error
