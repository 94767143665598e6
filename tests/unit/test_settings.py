"""Settings fail fast on unsafe values and document every variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_settings import SettingsError

from services.core.secrets import new_key
from services.core.settings import DEVELOPMENT_JWT_SECRET, Settings

STRONG_SECRET = "s" * 40
KEY = new_key()


def _env_names(model: type[BaseModel], prefix: str = "ALUR_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):  # the documented name first
            name = str(field.validation_alias.choices[0])
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_development_accepts_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALUR_AUTH__JWT_SECRET", raising=False)
    settings = Settings(env="development")
    assert settings.auth.jwt_secret.get_secret_value() == DEVELOPMENT_JWT_SECRET
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize("env", ["test", "production"])
def test_other_modes_refuse_the_development_secret(env: str) -> None:
    with pytest.raises(ValidationError, match="ALUR_AUTH__JWT_SECRET"):
        Settings(env=env, auth={"jwt_secret": DEVELOPMENT_JWT_SECRET})


def test_short_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(env="test", auth={"jwt_secret": "short"})


def test_production_needs_a_database() -> None:
    with pytest.raises(ValidationError, match="ALUR_DATABASE__URL"):
        Settings(env="production", auth={"jwt_secret": STRONG_SECRET}, database={"url": None})


def test_production_needs_secret_keys() -> None:
    with pytest.raises(ValidationError, match="ALUR_SECRETS__KEYS must be set"):
        Settings(
            env="production",
            auth={"jwt_secret": STRONG_SECRET},
            database={"url": "postgresql+asyncpg://alur@db/alur"},
        )


def test_secret_keys_are_checked_one_by_one() -> None:
    with pytest.raises(ValidationError, match="key 2 is not a Fernet key"):
        Settings(env="test", auth={"jwt_secret": STRONG_SECRET}, secrets={"keys": f"{KEY}, nope"})


def test_nested_sections_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALUR_ENV", "production")
    monkeypatch.setenv("ALUR_AUTH__JWT_SECRET", STRONG_SECRET)
    monkeypatch.setenv("ALUR_SECRETS__KEYS", KEY)
    monkeypatch.setenv("ALUR_AUTH__ALGORITHMS", "RS256, ES256")
    monkeypatch.setenv("ALUR_DATABASE__URL", "postgresql+asyncpg://alur@db/alur")
    monkeypatch.setenv("ALUR_WORKER__ESCALATION_MULTIPLES", "1, 2,4")
    monkeypatch.setenv("ALUR_WEBHOOKS__RETRY_SCHEDULE", "0,5,60.5")
    settings = Settings()
    assert settings.auth.algorithms == ["RS256", "ES256"]
    assert settings.worker.escalation_multiples == [1, 2, 4]
    assert settings.webhooks.retry_schedule == [0, 5, 60.5]
    assert settings.database_url == "postgresql+asyncpg://alur@db/alur"
    assert not settings.is_embedded


def test_the_configuration_page_documents_every_setting() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(ALUR_[A-Z_]+)`", page))
    assert set(_env_names(Settings)) <= documented


def test_any_setting_can_be_read_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Docker and Kubernetes hand secrets over as files: `<SETTING>_FILE` names one."""
    contents = {
        # `echo` and editors end a file with a line break; it is not part of the value.
        "ALUR_AUTH__JWT_SECRET": f"{STRONG_SECRET}\n",
        "ALUR_SECRETS__KEYS": f"{KEY},{new_key()}\r\n",
        "ALUR_DATABASE__URL": "postgresql+asyncpg://alur:s3cret@db/alur",
    }
    for name, content in contents.items():
        (tmp_path / name).write_text(content)
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / name))
    # A setting whose own name ends in _FILE is still a path, not a file to read.
    monkeypatch.setenv("ALUR_AUTH__JWKS_FILE", str(tmp_path / "jwks.json"))
    monkeypatch.setenv("ALUR_WORKER__HEARTBEAT_SECONDS_FILE", str(tmp_path / "beat"))
    (tmp_path / "beat").write_text("5\n")

    settings = Settings(env="production")
    assert settings.auth.jwt_secret.get_secret_value() == STRONG_SECRET
    assert settings.secrets.keys is not None
    assert settings.secrets.keys.get_secret_value().startswith(f"{KEY},")
    assert settings.database_url == "postgresql+asyncpg://alur:s3cret@db/alur"
    assert settings.auth.jwks_file == tmp_path / "jwks.json"
    assert settings.worker.heartbeat_seconds == 5


def test_a_setting_and_its_file_together_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "jwt").write_text(STRONG_SECRET)
    monkeypatch.setenv("ALUR_AUTH__JWT_SECRET", STRONG_SECRET)
    monkeypatch.setenv("ALUR_AUTH__JWT_SECRET_FILE", str(tmp_path / "jwt"))
    with pytest.raises(SettingsError, match="ALUR_AUTH__JWT_SECRET and ALUR_AUTH__JWT_SECRET_FILE"):
        Settings(env="test")


def test_a_missing_file_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ALUR_AUTH__JWT_SECRET", raising=False)
    monkeypatch.setenv("ALUR_AUTH__JWT_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"ALUR_AUTH__JWT_SECRET_FILE: cannot read .*absent"):
        Settings(env="test")
