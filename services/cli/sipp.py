"""`alur sipp check`: SOP 10's SIPP backup and sync check for one satker, printed as JSON.

The configuration is a `SippCheckConfig` given as a JSON file (`--config`), with the
flags overriding its fields; with no file, `--backup-dir` and `--satker-code` suffice.
Per-satker configuration stored in Alur's database is not read yet: until it is, pass
the JSON file. Exit status: 0 when the verdict is ok, 1 when it is not, 2 when the
configuration is unusable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
import typer
from pydantic import ValidationError

from services.cli.errors import refuse
from services.core.sipp.config import SippCheckConfig
from services.core.sipp.verify import verify_backup

sipp_app = typer.Typer(
    help="SIPP backup and synchronisation checks (SOP 10).", no_args_is_help=True
)


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> SippCheckConfig:
    """The JSON file's fields, then every flag that was given; exits 2 when unusable."""
    fields: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = orjson.loads(config_file.read_bytes())
        except OSError as error:
            raise refuse(f"cannot read {config_file}: {error.strerror or error}") from error
        except orjson.JSONDecodeError as error:
            raise refuse(f"{config_file} is not valid JSON: {error}") from error
        if not isinstance(loaded, dict):
            raise refuse(f"{config_file} must hold a JSON object of SippCheckConfig fields")
        fields.update(loaded)
    fields.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return SippCheckConfig.model_validate(fields)
    except ValidationError as error:
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in problem['loc']) or 'config'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise refuse(f"the SIPP check configuration is not usable:\n{problems}") from error


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise typer.BadParameter(f"{text!r} is not a YYYY-MM-DD date") from error


@sipp_app.command("check")
def check(
    satker: Annotated[str, typer.Option(help="The satker (court) id, e.g. pn-tais.")],
    backup_dir: Annotated[
        Path | None, typer.Option(help="Folder holding the SIPP-… backup files.")
    ] = None,
    log: Annotated[Path | None, typer.Option("--log", help="The SIPP sync job's log.")] = None,
    day: Annotated[
        date | None,
        typer.Option(
            "--date",
            parser=_parse_day,
            metavar="YYYY-MM-DD",
            help="Day to check (default: today in the satker's timezone).",
        ),
    ] = None,
    satker_code: Annotated[
        str | None, typer.Option(help="Abbreviation in backup names, e.g. TAIS.")
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="A SippCheckConfig as JSON; flags override it."),
    ] = None,
) -> None:
    """Check the day's SIPP backup and sync; print the verdict as JSON; exit 1 if not ok."""
    config = build_config(
        config_file, {"backup_dir": backup_dir, "sync_log": log, "satker_code": satker_code}
    )
    now = datetime.now(UTC)
    checked_day = day or now.astimezone(ZoneInfo(config.timezone)).date()
    verdict = asyncio.run(verify_backup(config, satker=satker, day=checked_day, now=now))
    typer.echo(orjson.dumps(verdict.model_dump(mode="json"), option=orjson.OPT_INDENT_2))
    raise typer.Exit(0 if verdict.ok else 1)
