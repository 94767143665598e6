"""`alur`: serve, work, migrate, and handle the catalog from the command line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from enum import StrEnum
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

from services.cli import errors
from services.cli.hooks import hook_source_app
from services.cli.keys import keys_app
from services.cli.people import people_app
from services.cli.records import audit_app, satker_app
from services.cli.secrets import secrets_app
from services.cli.sipp import sipp_app
from services.cli.token import token_app
from services.core.settings import get_settings

app = typer.Typer(
    help="Alur: executable SOPs for courts.",
    no_args_is_help=True,
    # `main` reports errors (services/cli/errors.py); typer's pretty tracebacks would
    # print local variables, secrets among them.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
catalog_app = typer.Typer(help="Validate and export the SOP catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(audit_app, name="audit")
app.add_typer(hook_source_app, name="hook-source")
app.add_typer(keys_app, name="keys")
app.add_typer(people_app, name="people")
app.add_typer(satker_app, name="satker")
app.add_typer(secrets_app, name="secrets")
app.add_typer(sipp_app, name="sipp")
app.add_typer(token_app, name="token")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"alur {package_version('alur')}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")
    ] = False,
) -> None:
    if debug:
        errors.show_tracebacks()


def main() -> None:
    """The `alur` command."""
    errors.run(app)


def _port() -> int:
    return int(os.environ.get("PORT", "8000"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    _refuse_invalid_catalog()

    uvicorn.run(
        "services.api.main:app",
        host=host,
        port=port or _port(),
        workers=workers,
        proxy_headers=True,
        log_level=get_settings().log.level.lower(),
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Run no worker: exit 0 if a worker on this host beat within "
            "ALUR_HEALTH__WORKER_STALE_SECONDS, 1 if not (a container's healthcheck).",
        ),
    ] = False,
) -> None:
    """Run an arq worker (cron jobs, automated steps, deliveries); it waits out Redis
    and database outages."""
    settings = get_settings()
    url = settings.redis.url
    if url is None:
        typer.echo("ALUR_REDIS__URL is not set (`alur dev` provides an embedded Redis)", err=True)
        raise typer.Exit(2)
    if check:
        _check_worker(url, settings.health.worker_stale_seconds)
        return

    import uvloop
    from arq.worker import get_kwargs

    from services.core.logging import configure_logging
    from services.worker.runner import AlurWorker
    from services.worker.settings import ArqSettings, on_process_startup

    # Before the first connection: waiting for Redis is already worth a log line.
    configure_logging(settings.log)
    options: dict[str, Any] = {
        **get_kwargs(ArqSettings),  # type: ignore[arg-type]
        "burst": burst,
        "on_startup": on_process_startup,
    }
    # The worker is mostly network I/O (receivers, sites, Redis, the database): uvloop's
    # transports cost it less CPU than asyncio's (bench/webhooks.py). arq asks the policy
    # for its loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    AlurWorker(redis_url=url, **options).run()


def _check_worker(redis_url: str, stale_seconds: int) -> None:
    import asyncio
    import socket

    from redis.exceptions import RedisError

    from services.worker.heartbeat import host_heartbeat_age

    host = socket.gethostname()
    try:
        age = asyncio.run(host_heartbeat_age(redis_url, host))
    except (OSError, RedisError) as error:
        typer.echo(f"cannot read the heartbeats: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(1) from None
    if age is None:
        typer.echo(f"no worker heartbeat from {host}", err=True)
        raise typer.Exit(1)
    if age > stale_seconds:
        typer.echo(f"the newest worker heartbeat from {host} is {age:.0f} s old", err=True)
        raise typer.Exit(1)
    typer.echo(f"worker on {host} beat {age:.0f} s ago")


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION.")] = False,
) -> None:
    """Bring the database schema to REVISION (default: the newest)."""
    from services.core import migrate as migrations

    if down:
        migrations.downgrade(revision)
    else:
        migrations.upgrade(revision)
    typer.echo(f"database at {revision}")


@app.command()
def dev(
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT or 8000).")] = None,
) -> None:
    """Embedded mode on one machine: migrate, then run the API and a worker together."""
    from services.core import migrate as migrations
    from services.core.redis import EmbeddedRedis

    settings = get_settings()
    migrations.upgrade()
    embedded = None
    env = dict(os.environ)
    if settings.redis.url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        env["ALUR_REDIS__URL"] = embedded.url
    alur = [sys.executable, "-m", "services.cli.main"]

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # A SIGTERM (a service manager, a test) stops the API and the worker too, as Ctrl-C
    # does; Python's default would end this process alone and orphan them.
    signal.signal(signal.SIGTERM, stop)
    children = []
    try:
        children.append(subprocess.Popen([*alur, "worker"], env=env))
        children.append(subprocess.Popen([*alur, "serve", "--port", str(port or _port())], env=env))
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if embedded is not None:
            embedded.close()


def _refuse_invalid_catalog() -> None:
    from services.core.catalog.loader import validate_catalog

    directory = get_settings().catalog.path
    problems = validate_catalog(directory)
    if problems:
        for problem in problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"refusing to start: {len(problems)} problem(s) in {directory}", err=True)
        raise typer.Exit(1)


class ExportFormat(StrEnum):
    JSON = "json"
    MERMAID = "mermaid"
    BPMN = "bpmn"
    PDF = "pdf"
    HTML = "html"


CatalogPath = Annotated[
    Path | None, typer.Argument(help="Catalog directory (default: ALUR_CATALOG__PATH).")
]


@catalog_app.command("validate")
def catalog_validate(path: CatalogPath = None) -> None:
    """Check every catalog file; print each problem as FILE:LINE: FIELD: MESSAGE."""
    from services.core.catalog.loader import validate_catalog

    directory = path or get_settings().catalog.path
    problems = validate_catalog(directory)
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) in {directory}", err=True)
        raise typer.Exit(1)
    typer.echo(f"catalog {directory} is valid")


@catalog_app.command("export")
def catalog_export(
    sop: Annotated[str, typer.Option("--sop", help="SOP code (or number).")],
    format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.JSON,
    path: Annotated[Path | None, typer.Option(help="Catalog directory.")] = None,
) -> None:
    """Print one SOP as JSON, a Mermaid flowchart, BPMN 2.0 XML, or the official document
    (PDF to standard output: redirect it to a file; HTML)."""
    from services.core.catalog import document
    from services.core.catalog.bpmn import to_bpmn
    from services.core.catalog.loader import load_catalog
    from services.core.catalog.mermaid import to_mermaid

    catalog = load_catalog(path or get_settings().catalog.path)
    matches = [d for d in catalog.sops if sop in (d.code, str(d.number), f"{d.number:02d}")]
    if not matches:
        codes = ", ".join(d.code for d in catalog.sops)
        typer.echo(f"no SOP {sop!r} in the catalog (codes: {codes})", err=True)
        raise typer.Exit(2)
    definition = matches[0]
    roles = {role.id: role for role in catalog.roles}
    if format is ExportFormat.PDF:
        sys.stdout.buffer.write(document.to_pdf(document.build(definition, roles)))
        sys.stdout.buffer.flush()
        return
    if format is ExportFormat.HTML:
        text = document.to_html(document.build(definition, roles))
    elif format is ExportFormat.JSON:
        text = orjson.dumps(definition.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode()
    elif format is ExportFormat.MERMAID:
        text = to_mermaid(definition, roles)
    else:
        text = to_bpmn(definition, roles)
    typer.echo(text)


@catalog_app.command("new")
def catalog_new(
    code: Annotated[str, typer.Option(help="The SOP's code: lowercase, digits and dashes.")],
    number: Annotated[int, typer.Option(min=1, max=9999, help="Its number in the catalog.")],
    title: Annotated[str, typer.Option(help="Its name as the SOP document writes it.")],
    lanes: Annotated[
        str, typer.Option(help="Role ids of roles.yaml, comma separated, in column order.")
    ],
    path: Annotated[Path | None, typer.Option(help="Catalog directory.")] = None,
) -> None:
    """Print a commented skeleton of a new SOP that validates as it is."""
    from services.core.catalog.loader import load_catalog
    from services.core.catalog.skeleton import CODE_PATTERN, skeleton

    catalog = load_catalog(path or get_settings().catalog.path)
    wanted = [lane.strip() for lane in lanes.split(",") if lane.strip()]
    known = {role.id for role in catalog.roles}
    problems = []
    if not CODE_PATTERN.match(code):
        problems.append(f"code {code!r}: lowercase letters, digits and dashes, 2-63 of them")
    if any(sop.code == code for sop in catalog.sops):
        problems.append(f"code {code!r} is taken")
    if any(sop.number == number for sop in catalog.sops):
        problems.append(f"number {number} is taken")
    if not wanted:
        problems.append("give at least one lane")
    problems += [f"lane {lane!r} is no role of roles.yaml" for lane in wanted if lane not in known]
    if len(set(wanted)) != len(wanted):
        problems.append("a lane is named twice")
    if not title.strip():
        problems.append("give a title")
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(skeleton(code, number, title.strip(), wanted), nl=False)


@catalog_app.command("import")
def catalog_import(
    bpmn: Annotated[
        Path, typer.Option("--bpmn", help="A BPMN 2.0 file from bpmn.io or Camunda Modeler.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Write the SOP file here (default: standard output).")
    ] = None,
    code: Annotated[str | None, typer.Option(help="The SOP's code (default: TODO).")] = None,
    number: Annotated[
        int | None, typer.Option(min=1, max=9999, help="Its number (default: TODO).")
    ] = None,
    path: Annotated[Path | None, typer.Option(help="Catalog directory (for roles.yaml).")] = None,
) -> None:
    """Turn a BPMN diagram into a catalog SOP file: lanes become role ids, tasks steps,
    named gateway flows outcomes; every field BPMN cannot carry is a TODO that
    `alur catalog validate` reports by line."""
    from services.core.catalog.bpmn_import import BpmnRefused, read_bpmn, to_yaml
    from services.core.catalog.loader import load_roles
    from services.core.catalog.skeleton import CODE_PATTERN

    def refuse(problem: str) -> NoReturn:
        typer.echo(f"error: {bpmn}: {problem}", err=True)
        raise typer.Exit(2)

    if code is not None and not CODE_PATTERN.match(code):
        typer.echo(f"error: code {code!r}: lowercase letters, digits and dashes", err=True)
        raise typer.Exit(2)
    if out is not None and out.exists():
        typer.echo(f"error: {out} exists; choose another --out or remove it", err=True)
        raise typer.Exit(2)
    try:
        if bpmn.stat().st_size > _MAX_BPMN_BYTES:
            refuse(f"larger than {_MAX_BPMN_BYTES // 2**20} MiB")
        data = bpmn.read_bytes()
    except OSError as exc:
        refuse(f"cannot read it ({exc.strerror or exc})")
    roles = load_roles(path or get_settings().catalog.path)
    try:
        imported = read_bpmn(data, roles)
    except BpmnRefused as exc:
        refuse(str(exc))
    text = to_yaml(imported, source=bpmn.name, code=code, number=number)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    todos = sum(1 for line in text.splitlines() if "# TODO:" in line)
    typer.echo(
        f"wrote {out}: {len(imported.steps)} steps, {todos} TODOs to fill in "
        "(alur catalog validate lists them)",
        err=True,
    )


_MAX_BPMN_BYTES = 10 * 2**20


@catalog_app.command("diff")
def catalog_diff(
    sop: Annotated[str, typer.Argument(help="SOP code (or number).")],
    from_version: Annotated[int, typer.Option("--from", min=1, help="The older version.")],
    to_version: Annotated[int, typer.Option("--to", min=1, help="The newer version.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What changed between two stored versions of a SOP, step by step."""
    from dataclasses import asdict

    from services.cli.records import _run
    from services.core.catalog.diff import as_text, diff
    from services.core.catalog.service import get_definition
    from services.core.errors import AlurError
    from services.core.logging import configure_logging

    configure_logging(get_settings().log)

    async def work(session: Any) -> tuple[Any, Any]:
        return (
            await get_definition(session, sop, from_version),
            await get_definition(session, sop, to_version),
        )

    try:
        old, new = _run(work)
    except AlurError as failed:
        typer.echo(f"error: {failed.detail}", err=True)
        raise typer.Exit(2) from None
    found = diff(old, new)
    if as_json:
        typer.echo(orjson.dumps(asdict(found), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(as_text(found, old, new))


if __name__ == "__main__":
    main()
