"""The files operators use to deploy: a compose file that hangs together, a Dockerfile
that builds what the compose file runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from services.worker.settings import ArqSettings

ROOT = Path(__file__).resolve().parents[2]
# The services that run until stopped (the migration is a one-shot job).
LONG_RUNNING = ("api", "worker", "postgres", "redis")


def _compose() -> dict[str, object]:
    data = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_the_services_of_a_deployment() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    assert {"api", "worker", "postgres", "redis", "migrate"} <= set(services)
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def _services() -> dict[str, Any]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _interpolated(text: str) -> str:
    """`${NAME:-default}` as Compose reads it when NAME is not set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def test_api_and_worker_wait_for_the_migration_and_use_postgres_and_redis() -> None:
    services = _services()
    for name in ("api", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        environment = service["environment"]
        assert environment["ALUR_DATABASE__URL"].startswith("postgresql+asyncpg://")
        assert environment["ALUR_REDIS__URL"].startswith("redis://")
        assert environment["ALUR_ENV"] == "production"
    assert services["migrate"]["command"] == ["alur", "migrate"]
    assert services["worker"]["command"] == ["alur", "worker"]


def test_production_secrets_come_as_files_not_environment_variables() -> None:
    """Production refuses to start without them; compose refuses to run without the
    variables its secrets are made from; the containers see files, not variables."""
    compose = _compose()
    secrets = compose["secrets"]
    assert isinstance(secrets, dict)
    for name in ("api", "worker", "migrate"):
        service = _services()[name]
        for required, secret in (
            ("ALUR_AUTH__JWT_SECRET", "alur_jwt_secret"),
            ("ALUR_SECRETS__KEYS", "alur_secret_keys"),
        ):
            assert required not in service["environment"], (name, required)
            assert service["environment"][f"{required}_FILE"] == f"/run/secrets/{secret}"
            assert secret in service["secrets"], (name, secret)
            assert secrets[secret] == {"environment": required}


def test_long_running_services_restart_by_themselves() -> None:
    services = _services()
    for name in LONG_RUNNING:
        assert services[name]["restart"] in ("always", "unless-stopped"), name
    assert services["migrate"]["restart"] == "no"


def test_the_worker_has_a_healthcheck_and_time_to_finish_its_jobs() -> None:
    worker = _services()["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "alur", "worker", "--check"]
    # SIGTERM lets running jobs finish (up to job_timeout); compose must not kill sooner.
    assert ArqSettings.job_completion_wait >= ArqSettings.job_timeout
    grace = re.fullmatch(r"(\d+)s", worker["stop_grace_period"])
    assert grace is not None
    assert int(grace[1]) > ArqSettings.job_completion_wait


def test_replicas_do_not_compete_for_one_host_port() -> None:
    """`--scale api=2` needs a host port for each replica: none published, or a range."""
    for name, service in _services().items():
        if name not in ("api", "worker"):
            continue
        for mapping in service.get("ports", []):
            text = _interpolated(str(mapping))
            if ":" not in text:
                continue  # a container port alone: Docker picks a free host port
            published = text.rsplit(":", 1)[0].rpartition(":")[2]  # without a host address
            first, _, last = published.partition("-")
            assert last, f"{name} publishes one fixed host port: {mapping}"
            assert int(last) > int(first), mapping


def test_the_image_carries_everything_the_service_reads() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("requirements.lock", "services", "migrations", "sop_catalog", "alembic.ini"):
        assert needed in dockerfile, needed


def test_api_and_worker_share_the_file_store() -> None:
    """A pack the worker builds is downloaded from an API replica; evidence uploaded to
    one replica is read by another and packed by the worker: one store for all."""
    compose: Any = _compose()
    store = compose["x-alur-environment"]["ALUR_FILES__STORE_URL"]
    assert store.startswith("file://")
    mount = f"alur-files:{store.removeprefix('file://')}"
    for service in ("api", "worker"):
        assert mount in compose["services"][service]["volumes"]
    assert "alur-files" in compose["volumes"]
