"""What every use case of a process shares: the catalog's roles, caches of what rarely
changes (SOP definitions, the satker tree, working calendars) and where new ids come
from. No connections: each use case gets its session from the unit of work."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.core.catalog import service as catalog
from services.core.engine.definition import Role, SopDefinition
from services.core.satkers.service import CalendarProvider, SatkerDirectory, load_directory

# Ids the engine may use for tasks one command opens (decisions open one, starts one).
_IDS_PER_COMMAND = 4
# How long a process trusts its copy of the satker tree.
DIRECTORY_CACHE_SECONDS = 30.0


def random_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Services:
    """Process-wide collaborators of the use cases (caches; no connections)."""

    roles: Mapping[str, Role]
    calendars: CalendarProvider = field(default_factory=CalendarProvider)
    # Where the ids of new instances and tasks come from.
    new_id: Callable[[], str] = random_id
    _definitions: dict[tuple[str, int], SopDefinition] = field(default_factory=dict)
    _directory: tuple[float, SatkerDirectory] | None = None

    def new_ids(self) -> list[str]:
        """Ids for the tasks one command may open."""
        return [self.new_id() for _ in range(_IDS_PER_COMMAND)]

    async def definition(self, session: AsyncSession, code: str, version: int) -> SopDefinition:
        # A stored (code, version) never changes, so it is cached for the process' life.
        key = (code, version)
        if key not in self._definitions:
            self._definitions[key] = await catalog.get_definition(session, code, version)
        return self._definitions[key]

    async def directory(self, session: AsyncSession, *ensure: str) -> SatkerDirectory:
        """The satker tree, cached: it changes rarely. A satker named in `ensure` that the
        cached copy lacks (added on another replica) makes it reload at once."""
        now = time.monotonic()
        cached = self._directory
        if (
            cached is None
            or now - cached[0] > DIRECTORY_CACHE_SECONDS
            or any(satker and satker not in cached[1] for satker in ensure)
        ):
            cached = self._directory = (now, await load_directory(session))
        return cached[1]

    def forget_directory(self) -> None:
        self._directory = None
