"""Two stores, one of each backend, given the same mail: what the PostgreSQL read tests
compare against the SQLite backend.
Mail goes in through the contract (`append`), with the same MessageMeta on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pillarbox.model import MessageMeta
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.postgres import PgStore
from pillarbox.store.sqlite import SqliteStore
from tests import pg
from tests.store.conftest import dummy_meta, write_blob


@dataclass
class Mail:
    data: bytes
    meta: MessageMeta
    flags: frozenset[str] = frozenset()
    internaldate: datetime = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)


@dataclass
class Box:
    store: Store
    mailbox_id: int
    dsn: str = ""
    uids: list[int] = field(default_factory=list)


def mail(
    data: bytes,
    flags: frozenset[str] = frozenset(),
    internaldate: datetime = datetime(2024, 5, 17, 10, 0, tzinfo=UTC),
    **meta: object,
) -> Mail:
    return Mail(data, dummy_meta(data, **meta), flags, internaldate)  # type: ignore[arg-type]


async def put(box: Box, m: Mail) -> int:
    """Store `m` in `box` through the contract."""
    blob = await write_blob(box.store, m.data)
    uid = (await box.store.append(box.mailbox_id, blob, m.meta, m.flags, m.internaldate)).uid
    box.uids.append(uid)
    return uid


async def _mailbox(store: Store) -> int:
    await store.add_domain("example.org")
    account = await store.add_account("alice@example.org", "$argon2id$dummy")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    return inbox.id


@asynccontextmanager
async def pg_box(tmp_path: Path) -> AsyncIterator[Box]:
    """A PostgreSQL store (a fresh database) and its INBOX."""
    dsn = pg.database(str(tmp_path / "pg"))
    bus = InProcessChangeBus()
    store = PgStore(dsn, bus=bus, node_id="test-node", pool_min=1, pool_max=4)
    await store.open()
    try:
        yield Box(store, await _mailbox(store), dsn)
    finally:
        await store.close()
        bus.close()


@asynccontextmanager
async def sqlite_box(tmp_path: Path) -> AsyncIterator[Box]:
    """A SQLite store and its INBOX."""
    bus = InProcessChangeBus()
    store = SqliteStore(tmp_path / "sqlite", bus=bus)
    await store.open()
    try:
        yield Box(store, await _mailbox(store))
    finally:
        await store.close()
        bus.close()
