"""Outbound webhook rules without I/O: the event types, filters, signatures (checked
with the `standardwebhooks` library), forbidden addresses, the retry schedule."""

from __future__ import annotations

import ast
import base64
import dataclasses
import ipaddress
import random
import typing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jsonschema
import pytest
import standardwebhooks

from services.core.engine import state
from services.core.settings import PROJECT_ROOT, WebhookSettings
from services.core.webhooks_out import delivery, event_types, signing, targets
from services.core.webhooks_out.event_types import BY_TYPE, EVENT_TYPES, check_patterns, matches

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def _engine_event_types() -> set[str]:
    return {effect.event_type for effect in typing.get_args(state.Effect)}


def _finding_types() -> set[str]:
    """Every string literal given as `type=` to `record_finding(...)` anywhere in services/
    (including both branches of a conditional expression)."""
    found: set[str] = set()
    for path in (PROJECT_ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != "record_finding":
                continue
            for keyword in node.keywords:
                if keyword.arg == "type":
                    found |= {
                        n.value
                        for n in ast.walk(keyword.value)
                        if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    }
    return found


def test_every_emitted_event_type_is_a_known_event_type() -> None:
    engine, findings = _engine_event_types(), _finding_types()
    assert len(engine) == len(typing.get_args(state.Effect))
    assert {"monitor.down", "backup.failed", "webhook.subscription_disabled"} <= findings
    assert engine | findings <= set(BY_TYPE)
    assert {e.kind for e in EVENT_TYPES if e.type in engine} == {"instance"}
    assert {e.kind for e in EVENT_TYPES if e.type in findings} == {"finding"}


def test_instance_event_schemas_name_every_effect_field() -> None:
    for effect in typing.get_args(state.Effect):
        properties = BY_TYPE[effect.event_type].data_schema["properties"]
        # A task-carrying effect publishes the task as `before`/`after`; the others
        # publish their fields and the instance status before and after.
        fields = {f.name for f in dataclasses.fields(effect) if f.name != "task"}
        # An escalation also names the people it reached (the sweep adds `to_people`).
        if effect.event_type.endswith(".escalated"):
            fields.add("to_people")
        assert fields | {"before", "after", "recorded_at"} == set(properties), effect.event_type


@pytest.mark.parametrize("event", EVENT_TYPES, ids=lambda e: e.type)
def test_each_example_matches_its_schema(event: event_types.EventType) -> None:
    validator = jsonschema.Draft202012Validator(
        event.schema, format_checker=jsonschema.FormatChecker()
    )
    validator.validate(event.example)
    assert event.description.strip()


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "task.opened", True),
        (["task.*"], "task.opened", True),
        (["task.*"], "instance.started", False),
        (["task.*"], "taskx.opened", False),
        (["instance.started"], "instance.started", True),
        (["instance.started"], "instance.completed", False),
        (["monitor.down", "backup.*"], "backup.failed", True),
        ([], "task.opened", False),
    ],
)
def test_filters(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


@pytest.mark.parametrize("pattern", ["tsak.*", "task.open", "task*", "*.opened", "", "TASK.*"])
def test_unknown_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(event_types.WebhookEventTypeUnknown):
        check_patterns([pattern])


def test_known_patterns_are_kept_once() -> None:
    assert check_patterns(["task.*", "*", "task.*", "renewal.due"]) == [
        "task.*",
        "*",
        "renewal.due",
    ]


def test_secrets_hold_enough_randomness() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert signing.new_secret() != secret


def test_signatures_verify_with_the_reference_library() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    body = b'{"id":"evt_1","type":"task.opened"}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signing.headers([new, old], "evt_1_sub", timestamp, body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert standardwebhooks.Webhook(secret).verify(body, headers)["id"] == "evt_1"
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(new).verify(body + b" ", headers)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_forbidden_addresses(address: str, reason: str | None) -> None:
    assert targets.forbidden_reason(ipaddress.ip_address(address)) == reason


async def test_literal_addresses_are_checked_without_a_lookup() -> None:
    with pytest.raises(targets.WebhookUrlForbidden) as refused:
        await targets.check_url("http://[::ffff:7f00:1]:8080/x", allow_private=False)
    assert refused.value.extra["reason"] == "loopback"
    with pytest.raises(targets.WebhookUrlForbidden):
        await targets.check_url("ftp://93.184.216.34/", allow_private=False)
    assert await targets.check_url("https://93.184.216.34/", allow_private=False) == [
        ipaddress.ip_address("93.184.216.34")
    ]
    assert await targets.check_url("http://127.0.0.1/", allow_private=True) == []


def test_a_pinned_request_keeps_the_name_for_host_and_tls() -> None:
    target = targets.pinned(
        "https://hooks.example.org:8443/in?x=1", ipaddress.ip_address("2606:4700::1111")
    )
    assert target.url == "https://[2606:4700::1111]:8443/in?x=1"
    assert target.headers == {"host": "hooks.example.org:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.org"}
    plain = targets.pinned("http://hooks.example.org/in", ipaddress.ip_address("93.184.216.34"))
    assert (plain.url, plain.headers, plain.extensions) == (
        "http://93.184.216.34/in",
        {"host": "hooks.example.org"},
        {},
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", timedelta(seconds=120)),
        ("0", timedelta(0)),
        ("86400", delivery.RETRY_AFTER_CAP),
        (format_datetime(NOW + timedelta(minutes=3), usegmt=True), timedelta(minutes=3)),
        (format_datetime(NOW - timedelta(minutes=3), usegmt=True), timedelta(0)),
        ("soon", None),
    ],
)
def test_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert delivery.retry_after(value, NOW) == expected


def test_the_default_schedule_spans_about_a_day_with_jitter() -> None:
    schedule = WebhookSettings().retry_schedule
    assert schedule[0] == 0
    assert timedelta(hours=20) < timedelta(seconds=sum(schedule)) < timedelta(hours=36)
    rng = random.Random(7)
    for made in range(1, len(schedule)):
        delay = delivery.next_delay(schedule, made, rng)
        assert delay is not None
        assert 0.8 * schedule[made] <= delay.total_seconds() <= 1.2 * schedule[made]
    assert delivery.next_delay(schedule, len(schedule), rng) is None


@pytest.mark.parametrize("schedule", ["", "5,10", "0,-1"])
def test_a_schedule_starts_now_and_never_goes_back(schedule: str) -> None:
    with pytest.raises(ValueError, match="retry_schedule"):
        WebhookSettings.model_validate({"retry_schedule": schedule})


def test_schedule_from_the_environment() -> None:
    assert WebhookSettings.model_validate({"retry_schedule": "0, 1,2.5"}).retry_schedule == [
        0,
        1,
        2.5,
    ]


def test_outcomes() -> None:
    assert delivery.Outcome(204, None, 1).succeeded
    for retried in (None, 500, 503, 429, 408):
        assert delivery.Outcome(retried, "x", 1).retryable
    for refused in (301, 400, 401, 404, 410, 422):
        assert not delivery.Outcome(refused, "x", 1).retryable
    assert not delivery.Outcome(None, "not sent", 1, forbidden=True).retryable
