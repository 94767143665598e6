"""The registry of automated-step handlers, by the job names the catalog uses: the worker
wires each feature's handler to the automation that runs them (neither knows the other)."""

from __future__ import annotations

from services.core.automation.service import Handler
from services.core.sipp import service as sipp


def default_handlers() -> dict[str, Handler]:
    return {
        "sipp_scheduled_run": sipp.run_scheduled_step,
        "sipp_backup_check": sipp.run_check_step,
    }
