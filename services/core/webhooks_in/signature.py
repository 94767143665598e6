"""Standard Webhooks verification (https://www.standardwebhooks.com) of inbound messages,
with the signing of outbound ones (`services.core.webhooks_out.signing`): the sender signs
`{webhook-id}.{webhook-timestamp}.{raw body}` with HMAC-SHA256 keyed by the secret's
bytes (the base64 after `whsec_`) and sends `v1,<base64 signature>` entries."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

from services.core.errors import AlurError
from services.core.webhooks_out.signing import SECRET_PREFIX, new_secret, sign

__all__ = ["SECRET_PREFIX", "new_secret", "sign", "verify"]

# Both ways: a sender's clock may run ahead as well as behind. Older replays are refused
# outright, newer ones are caught by the webhook-id dedupe.
TOLERANCE = timedelta(minutes=5)
MAX_MESSAGE_ID_LENGTH = 255


class WebhookSignatureInvalid(AlurError):
    code = "webhook_signature_invalid"
    status = 401
    title = "The webhook signature is missing or does not match"


class WebhookTimestampStale(AlurError):
    code = "webhook_timestamp_stale"
    status = 401
    title = "The webhook timestamp is outside the tolerance"


def _signatures(header: str) -> list[bytes]:
    """The decoded `v1` entries of a webhook-signature header; others are skipped."""
    found = []
    for entry in header.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """Check the headers against the raw body; return the webhook-id."""
    message_id = headers.get("webhook-id")
    timestamp_text = headers.get("webhook-timestamp")
    signature_header = headers.get("webhook-signature")
    if not (message_id and timestamp_text and signature_header):
        raise WebhookSignatureInvalid(
            "webhook-id, webhook-timestamp and webhook-signature headers are required"
        )
    if len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise WebhookSignatureInvalid(f"webhook-id is longer than {MAX_MESSAGE_ID_LENGTH}")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookSignatureInvalid("webhook-timestamp is not a Unix time in seconds") from None
    skew = abs(now.timestamp() - timestamp)
    if skew > TOLERANCE.total_seconds():
        raise WebhookTimestampStale(
            f"webhook-timestamp is {skew:.0f} s away from the server's clock "
            f"(tolerance {TOLERANCE.total_seconds():.0f} s)"
        )
    expected = base64.b64decode(sign(secret, message_id, timestamp, body).split(",", 1)[1])
    # Every entry is compared, in constant time, so timing tells nothing about which failed.
    matches = [hmac.compare_digest(expected, given) for given in _signatures(signature_header)]
    if not any(matches):
        raise WebhookSignatureInvalid("no v1 signature matches the body")
    return message_id
