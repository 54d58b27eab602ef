"""The store backends the contract tests run against.

Each entry is a factory from (an empty data directory, the change bus) to an unopened
store. PostgreSQL gets a fresh database per data directory (tests/pg.py) and skips
(`pytest.skip`; on CI, fails) in its factory when no server is reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pillarbox.store.api import ChangeBus, Store
from pillarbox.store.postgres import PgStore
from pillarbox.store.sqlite import SqliteStore
from tests import pg


def _sqlite(path: Path, bus: ChangeBus) -> Store:
    return SqliteStore(path, bus=bus)


def _postgres(path: Path, bus: ChangeBus) -> Store:
    return PgStore(pg.database(str(path)), bus=bus, node_id="test-node", pool_min=1, pool_max=8)


BACKENDS: dict[str, Callable[[Path, ChangeBus], Store]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}
