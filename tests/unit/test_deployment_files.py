"""The files operators use to deploy: a compose file that hangs together, a Dockerfile
that builds what the compose file runs."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


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


def test_api_and_worker_wait_for_the_migration_and_use_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name in ("api", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        environment = service["environment"]
        assert environment["ALUR_DATABASE__URL"].startswith("postgresql+asyncpg://")
        assert environment["ALUR_REDIS__URL"].startswith("redis://")
        assert environment["ALUR_ENV"] == "production"
        # Production refuses to start without them; compose refuses to run without them.
        for required in ("ALUR_AUTH__JWT_SECRET", "ALUR_SECRETS__KEYS"):
            assert environment[required].startswith(f"${{{required}:?"), required
    assert services["migrate"]["command"] == ["alur", "migrate"]
    assert services["worker"]["command"] == ["alur", "worker"]


def test_the_image_carries_everything_the_service_reads() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in ("requirements.lock", "services", "migrations", "sop_catalog", "alembic.ini"):
        assert needed in dockerfile, needed
