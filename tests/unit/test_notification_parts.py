"""The pieces of a notification that need no server: local times in Indonesian, the
person's address in a chat URL, secrets kept out of error texts, SMTP URLs, the digest
hour, and a person's choice of channels."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.core.engine.calendar import WorkingCalendar
from services.core.notifications import texts
from services.core.notifications.channels import SmtpTarget, chat_url, scrub
from services.core.notifications.kinds import (
    EVENT_KINDS,
    OPERATIONS_KINDS,
    TASK_KINDS,
    check_channels,
)
from services.core.notifications.relay import digest_time
from services.core.webhooks_out.event_types import BY_TYPE


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Asia/Jakarta", "2 Desember 2026, 14.30 WIB"),
        ("Asia/Makassar", "2 Desember 2026, 15.30 WITA"),
        ("Asia/Jayapura", "2 Desember 2026, 16.30 WIT"),
    ],
)
def test_times_are_written_as_the_office_writes_them(zone: str, expected: str) -> None:
    assert texts.local_time(datetime(2026, 12, 2, 7, 30, tzinfo=UTC), zone) == expected


def test_the_html_part_escapes_the_text_and_links_the_link() -> None:
    message = texts.Message("s", "Perihal: <b>A & B</b>\nhttps://alur.example/v1/instances/x")
    html = message.html()
    assert "&lt;b&gt;A &amp; B&lt;/b&gt;" in html
    assert '<a href="https://alur.example/v1/instances/x">' in html


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("tgram://123:ABCDEF/", "tgram://123:ABCDEF/%2B6281234567890"),
        ("whatsapp://tok@12345", "whatsapp://tok@12345/%2B6281234567890"),
        ("json://gw/api/sendText?:chatId={digits}%40c.us", "json://gw/api/sendText?:chatId=6281234567890%40c.us"),
        ("json://gw/send?to={to}&+X-Key=k", "json://gw/send?to=%2B6281234567890&+X-Key=k"),
        ("tgram://123:ABCDEF/?format=text", "tgram://123:ABCDEF/%2B6281234567890?format=text"),
    ],
)  # fmt: skip
def test_the_address_goes_where_the_url_says(template: str, expected: str) -> None:
    assert chat_url(template, "+6281234567890") == expected


def test_errors_lose_the_credentials_of_the_url() -> None:
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100200"
    error = "Failed to send to https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in scrub(error, url)
    gateway = "json://user:pa55word-long@gw.example/api?+X-Api-Key=waha-secret-key"
    said = "401 for user:pa55word-long with waha-secret-key"
    assert "pa55word-long" not in scrub(said, gateway)
    assert "waha-secret-key" not in scrub(said, gateway)


def test_smtp_urls() -> None:
    plain = SmtpTarget.parse("smtp://127.0.0.1:2525")
    assert (plain.hostname, plain.port, plain.use_tls, plain.start_tls) == (
        "127.0.0.1",
        2525,
        False,
        None,
    )
    secure = SmtpTarget.parse("smtps://alur%40pn.go.id:rahasia%2F1@mail.pn.go.id")
    assert (secure.port, secure.use_tls, secure.username, secure.password) == (
        465,
        True,
        "alur@pn.go.id",
        "rahasia/1",
    )
    assert SmtpTarget.parse("smtp://mail:587?starttls=true").start_tls is True
    with pytest.raises(ValueError, match="smtp://"):
        SmtpTarget.parse("http://mail.example")


def test_the_digest_goes_at_the_digest_hour_of_the_next_working_day() -> None:
    calendar = WorkingCalendar()
    # Friday 20 November 2026, 09:00 WIB: the next 08:00 is Saturday, so Monday 08:00.
    friday = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    assert digest_time(calendar, "Asia/Jakarta", 8, friday) == datetime(
        2026, 11, 23, 1, 0, tzinfo=UTC
    )
    # Tuesday 17 November, 06:00 WIB: the same morning.
    early = datetime(2026, 11, 16, 23, 0, tzinfo=UTC)
    assert digest_time(calendar, "Asia/Jakarta", 8, early) == datetime(
        2026, 11, 17, 1, 0, tzinfo=UTC
    )


def test_a_person_chooses_known_kinds_and_channels() -> None:
    assert check_channels({"overdue": ["email", "whatsapp", "email"], "monitor_up": []}) == {
        "overdue": ["email", "whatsapp"],
        "monitor_up": [],
    }
    with pytest.raises(ValueError, match="unknown kind"):
        check_channels({"gossip": ["email"]})
    with pytest.raises(ValueError, match="unknown channel 'sms'"):
        check_channels({"overdue": ["sms"]})


@pytest.mark.parametrize(
    "event_type", sorted(t for t, kind in EVENT_KINDS.items() if kind in OPERATIONS_KINDS)
)
def test_each_service_message_reads_the_documented_event(event_type: str) -> None:
    """The templates read the data the webhook catalog documents for each event."""
    example = BY_TYPE[event_type].example
    message = texts.operations_message(
        EVENT_KINDS[event_type],
        example["data"],
        satker_name="Pengadilan Negeri Tais",
        timezone="Asia/Jakarta",
        link=None,
    )
    assert message.subject.startswith("[Alur] ")
    assert "Alur, pesan otomatis" in message.text
    assert "None" not in message.text
    assert "{" not in message.text


@pytest.mark.parametrize(
    "event_type", sorted(t for t, kind in EVENT_KINDS.items() if kind in TASK_KINDS)
)
def test_each_task_message_names_sop_step_instance_deadline_and_link(event_type: str) -> None:
    data = BY_TYPE[event_type].example["data"]
    facts = texts.TaskFacts(
        sop_number=6,
        sop_title="Pengelolaan Konten Website",
        step_number=4,
        activity="Menyampaikan konsep",
        instance_title="Berita sidang keliling",
        due_at=datetime(2026, 12, 2, 7, 30, tzinfo=UTC),
        timezone="Asia/Jakarta",
        link="https://alur.example/v1/instances/x",
    )
    message = texts.task_message(EVENT_KINDS[event_type], facts, data)
    for part in (
        "SOP: 06 Pengelolaan Konten Website",
        "Langkah: 4. Menyampaikan konsep",
        "Perihal: Berita sidang keliling",
        "Batas waktu: 2 Desember 2026, 14.30 WIB",
        "https://alur.example/v1/instances/x",
    ):
        assert part in message.text, (part, message.text)
