"""Sending one message: e-mail over SMTP (`aiosmtplib`), chat through Apprise (one
library for WhatsApp gateways, the WhatsApp Cloud API, Telegram and many more, each
configured by a URL).

A channel that is not configured does not fail: the message is logged (without its
address) and recorded as `skipped`, so `make run` works with nothing set up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import aiosmtplib
import apprise

from services.core.notifications.texts import Message
from services.core.settings import NotifySettings

# Apprise logs request URLs (a bot token is part of Telegram's) at debug level: its
# records stay out of Alur's log; a failure's reason is captured per send instead.
logging.getLogger("apprise").propagate = False

SMTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    """`sent`, or a failure: `permanent` ones are not retried (a refused address, a
    channel that is not configured)."""

    sent: bool
    error: str | None = None
    permanent: bool = False
    skipped: bool = False


class NotConfigured(Exception):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """`smtp://[user:password@]host[:port][?starttls=true]` or `smtps://...` (TLS
        from the start, port 465 by default)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("ALUR_NOTIFY__SMTP_URL must be smtp://host[:port] or smtps://...")
        options = dict(parse_qsl(parts.query))
        starttls = options.get("starttls")
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if parts.scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=parts.scheme == "smtps",
            # None: aiosmtplib upgrades when the server offers it.
            start_tls=None if starttls is None else starttls.lower() in ("1", "true", "yes"),
        )


def email_message(settings: NotifySettings, address: str, message: Message) -> EmailMessage:
    """A plain-text message with an HTML alternative."""
    email = EmailMessage()
    email["From"] = settings.from_address
    email["To"] = address
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain="alur")
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    email.add_alternative(message.html(), subtype="html")
    return email


async def send_email(settings: NotifySettings, address: str, message: Message) -> Outcome:
    if settings.smtp_url is None:
        raise NotConfigured("no SMTP server (ALUR_NOTIFY__SMTP_URL)")
    target = SmtpTarget.parse(settings.smtp_url.get_secret_value())
    try:
        await aiosmtplib.send(
            email_message(settings, address, message),
            hostname=target.hostname,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, f"refused by the server: {_smtp_reason(exc)}", permanent=True)
    except aiosmtplib.SMTPResponseException as exc:
        # 5xx: refused for good; 4xx: try again later.
        return Outcome(False, f"SMTP {exc.code}: {exc.message}"[:500], permanent=exc.code >= 500)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(True)


def _smtp_reason(exc: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{e.code} {e.message}" for e in exc.recipients)[:500]


def chat_url(template: str, address: str) -> str:
    """The person's address in the channel's URL: in place of `{to}` (as stored, e.g.
    `+628123456789`) or `{digits}` (digits only, as most WhatsApp gateways want), or
    else appended to the path, Apprise's form for a target (`tgram://token/<chat id>`,
    `whatsapp://token@phone-id/<number>`)."""
    if "{to}" in template or "{digits}" in template:
        digits = re.sub(r"\D", "", address)
        return template.replace("{to}", quote(address, safe="")).replace("{digits}", digits)
    scheme, rest = template.split("://", 1)
    path, _, query = rest.partition("?")
    url = f"{scheme}://{path.rstrip('/')}/{quote(address, safe='')}"
    return f"{url}?{query}" if query else url


def _secrets_of(url: str) -> list[str]:
    """The parts of a channel URL that may be credentials, to keep them out of errors:
    the user and password, a token in place of the port (`tgram://123:AAE.../`), long
    path segments and query values."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    found = [userinfo, *userinfo.split(":")]
    port = host.partition(":")[2]
    if port and not port.isdigit():
        found += [host, port]
    found += [segment for segment in parts.path.split("/") if len(segment) >= 8]
    found += [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for secret in _secrets_of(url):
        text = text.replace(secret, "***")
    return text


# Apprise's log capture is per logger, not per call: one chat message at a time.
_chat_lock = threading.Lock()


def _notify_capturing(notifier: apprise.Apprise, message: Message) -> tuple[bool, str]:
    """Send (blocking, in a worker thread) and return what Apprise logged meanwhile."""
    capture = apprise.LogCapture(level=logging.WARNING)  # type: ignore[no-untyped-call]
    with _chat_lock, capture as captured:
        sent = notifier.notify(body=message.text, title=message.subject)
        return bool(sent), str(captured.getvalue())


async def send_chat(
    settings: NotifySettings, channel: str, address: str, message: Message
) -> Outcome:
    template = settings.chat_urls.get(channel)
    if template is None:
        raise NotConfigured(f"no {channel} URL (ALUR_NOTIFY__CHAT_URLS)")
    url = chat_url(template.get_secret_value(), address)
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return Outcome(False, f"the {channel} URL is not one Apprise knows", permanent=True)
    sent, log = await asyncio.to_thread(_notify_capturing, notifier, message)
    if sent:
        return Outcome(True)
    lines = [line.split(" - ", 2)[-1] for line in log.splitlines() if line.strip()]
    reason = scrub(" | ".join(lines[-2:]) or f"{channel} refused the message", url)
    return Outcome(False, reason[:500])
