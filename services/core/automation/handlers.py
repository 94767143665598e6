"""The registry of automated-step handlers, by the job names the catalog uses."""

from __future__ import annotations

from services.core.automation.service import Handler


def default_handlers() -> dict[str, Handler]:
    return {}
