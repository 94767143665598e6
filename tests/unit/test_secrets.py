"""Stored secrets are sealed with the first key, opened with any, and a missing key is
said plainly; outside production a machine key is created once."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, MultiFernet

from services.core import secrets
from services.core.secrets import PREFIX, SecretKeyError, is_sealed, new_key, seal, unseal

OLD, NEW = new_key(), new_key()


def ring(*keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def test_a_secret_is_sealed_and_opened() -> None:
    stored = seal("whsec_abc", ring(OLD))
    assert stored.startswith(PREFIX)
    assert "whsec_abc" not in stored
    assert is_sealed(stored)
    assert unseal(stored, ring(OLD)) == "whsec_abc"
    assert seal("whsec_abc", ring(OLD)) != stored  # a fresh IV every time


def test_plaintext_from_before_and_wiped_secrets_pass_through() -> None:
    assert unseal("whsec_legacy", ring(OLD)) == "whsec_legacy"
    assert seal("", ring(OLD)) == ""
    assert not is_sealed("whsec_legacy")
    assert not is_sealed("")


def test_rotation_opens_with_any_key_and_seals_with_the_first() -> None:
    stored = seal("whsec_abc", ring(OLD))
    rotated = ring(NEW, OLD)
    assert unseal(stored, rotated) == "whsec_abc"
    resealed = seal(unseal(stored, rotated), rotated)
    assert unseal(resealed, ring(NEW)) == "whsec_abc"


def test_a_missing_key_is_named_not_a_crash_deep_down() -> None:
    stored = seal("whsec_abc", ring(OLD))
    with pytest.raises(SecretKeyError, match="the key that sealed it is missing"):
        unseal(stored, ring(NEW))


def test_the_machine_key_is_created_once_privately(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secrets._local_key(tmp_path), range(16)))
    assert len(keys) == 1
    path = tmp_path / secrets.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == keys.pop()
    assert [p.name for p in tmp_path.iterdir()] == [secrets.KEY_FILE]  # no leftovers
    assert os.access(path, os.R_OK)
