"""Notification tests' tools: a real SMTP server (aiosmtpd) on loopback whose mail the
tests parse, and a court of the test's own with people in it."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.people import unique
from tests.servers import free_port
from tests.support import TokenFactory


@dataclass
class Mailbox:
    """What the SMTP server received, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@dataclass
class SmtpServer:
    url: str
    mailbox: Mailbox


def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(f"smtp://127.0.0.1:{port}", mailbox)
    finally:
        controller.stop()


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, message
    assert part.get_content_type() == f"text/{subtype}", message
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def new_court(client: httpx.AsyncClient, auth_headers: TokenFactory, prefix: str) -> str:
    """A district court below the high court that only this test uses."""
    satker = unique(prefix)
    created = await client.post(
        "/v1/satkers",
        json={"id": satker, "name": f"PN {prefix}", "parent": "pt-bengkulu"},
        headers=auth_headers(["admin"], satker="pt-bengkulu", sub="admin-pt"),
    )
    assert created.status_code == 201, created.text
    return satker
