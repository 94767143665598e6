"""The kinds of notification, the events that make them, and the channels they go by."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.core.settings import NOTIFICATION_CHANNELS

CHANNELS = NOTIFICATION_CHANNELS
# Chat waits for the satker's working hours; e-mail goes at once.
CHAT_CHANNELS = frozenset({"whatsapp", "telegram"})

# Event type -> kind of notification. Events not named here tell nobody.
EVENT_KINDS: Mapping[str, str] = {
    "task.opened": "task_opened",
    "task.assigned": "task_assigned",
    "task.due_soon": "due_soon",
    "task.overdue": "overdue",
    "task.escalated": "escalated",
    "instance.escalated": "escalated",
    "task.flagged": "flagged",
    "backup.failed": "backup_failed",
    "monitor.down": "monitor_down",
    "monitor.up": "monitor_up",
    "certificate.expiring": "certificate_expiring",
    "domain.expiring": "domain_expiring",
    "renewal.due": "renewal_due",
    "sop_review.opened": "review_due",
}
KINDS: tuple[str, ...] = tuple(dict.fromkeys(EVENT_KINDS.values()))
# Kinds about a task: quiet once the task is no longer open.
TASK_KINDS = frozenset(
    {"task_opened", "task_assigned", "due_soon", "overdue", "escalated", "flagged"}
)
# Kinds about the court's services rather than a task: told to the operations roles.
OPERATIONS_KINDS = frozenset(KINDS) - TASK_KINDS
# Operations kinds told to one role rather than `ALUR_NOTIFY__OPERATIONS_ROLES`: a SOP's
# yearly review is the Kasubbag's (`services.core.reviews.service.REVIEW_ROLE`).
KIND_ROLES: Mapping[str, tuple[str, ...]] = {"review_due": ("kasubbag_ptip",)}
# The kind a person may take as a daily digest.
DIGEST_KIND = "due_soon"


def check_channels(choice: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """A person's channels per kind, checked (`ValueError`): known kinds, known channels,
    no repeats (an empty list: that kind is not sent at all)."""
    checked: dict[str, list[str]] = {}
    for kind, channels in choice.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind of notification {kind!r} (one of: {', '.join(KINDS)})")
        channels = list(channels)
        unknown = [channel for channel in channels if channel not in CHANNELS]
        if unknown:
            raise ValueError(
                f"unknown channel {unknown[0]!r} for {kind} (one of: {', '.join(CHANNELS)})"
            )
        checked[kind] = list(dict.fromkeys(channels))
    return checked
