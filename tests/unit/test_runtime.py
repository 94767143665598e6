"""Freezing the startup heap: what startup built is left alone, later garbage is not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.core.runtime import freeze_startup_heap


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_startup_objects_are_frozen_and_later_cycles_still_collected(unfrozen: None) -> None:
    survivor = _Node()
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(survivor)
    before = sum(isinstance(o, _Node) for o in gc.get_objects())
    assert before == 0, "frozen objects are out of the collector's view"

    _Node()  # a cycle made after startup: garbage the collector must still find
    assert sum(isinstance(o, _Node) for o in gc.get_objects()) == 1
    gc.collect()
    assert sum(isinstance(o, _Node) for o in gc.get_objects()) == 0
