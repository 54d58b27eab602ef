"""The store backends the contract tests run against.

Each entry is a factory from (an empty data directory, the change bus) to an unopened
store. Today that is SQLite only; a PostgreSQL backend adds itself here and, if it
needs a server, skips (`pytest.skip`) in its factory when none is reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pillarbox.store.api import ChangeBus, Store
from pillarbox.store.sqlite import SqliteStore


def _sqlite(path: Path, bus: ChangeBus) -> Store:
    return SqliteStore(path, bus=bus)


BACKENDS: dict[str, Callable[[Path, ChangeBus], Store]] = {"sqlite": _sqlite}
