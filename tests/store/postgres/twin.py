"""Two stores, one of each backend, given the same mail: what the PostgreSQL read tests
compare against the SQLite backend.

Until the message writes of the PostgreSQL backend exist, mail is stored in it as the
rows its `append` writes (`_seed`; accounts and mailboxes likewise); `put` uses
`append` as soon as it works.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from pillarbox.model import MessageMeta
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.postgres import PgStore
from pillarbox.store.postgres.reading import CHUNK
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.flags import split_flags
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


async def _seed(dsn: str, mailbox_id: int, m: Mail) -> int:
    """The rows the PostgreSQL `append` writes for `m` (blob, chunks, search text,
    message, keywords); its UID."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            meta = m.meta
            sent = meta.sent_date
            blob_id = await conn.fetchval(
                "INSERT INTO blobs (size, envelope, bodystructure, body, parts, preview,"
                " subject, from_, to_, cc, bcc, message_id, sent_date, sent_day, thread_refs)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                " RETURNING id",
                len(m.data),
                meta.envelope,
                meta.bodystructure,
                meta.body,
                meta.parts,
                meta.preview,
                meta.subject,
                meta.from_,
                meta.to,
                meta.cc,
                meta.bcc,
                meta.message_id,
                sent.isoformat() if sent else None,
                sent.date().isoformat() if sent else None,
                meta.references,
            )
            await conn.executemany(
                "INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)",
                [
                    (blob_id, i, m.data[i * CHUNK : (i + 1) * CHUNK])
                    for i in range((len(m.data) + CHUNK - 1) // CHUNK)
                ],
            )
            await conn.execute(
                "INSERT INTO blob_text (blob_id, headers, headers_cf, body_cf)"
                " VALUES ($1, $2, $3, $4)",
                blob_id,
                meta.headers,
                meta.headers.casefold(),
                meta.body_text.casefold(),
            )
            uid, modseq = await conn.fetchrow(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
                " WHERE id = $1 RETURNING uidnext - 1, highestmodseq",
                mailbox_id,
            )
            bits, keywords = split_flags(m.flags)
            when = m.internaldate
            offset = when.utcoffset() or timedelta(0)
            await conn.execute(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate,"
                " internal_tz, size, blob_id, savedate, thread_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
                mailbox_id,
                uid,
                modseq,
                bits,
                int(when.timestamp()),
                int(offset.total_seconds() // 60),
                len(m.data),
                blob_id,
                int(datetime.now(UTC).timestamp()),
            )
            await conn.executemany(
                "INSERT INTO keywords (mailbox_id, uid, keyword) VALUES ($1, $2, $3)",
                [(mailbox_id, uid, k) for k in keywords.values()],
            )
            return int(uid)
    finally:
        await conn.close()


async def put(box: Box, m: Mail) -> int:
    """Store `m` in `box` through the contract, or (PostgreSQL, until its message writes
    exist) as the rows they write."""
    try:
        blob = await write_blob(box.store, m.data)
        uid = (await box.store.append(box.mailbox_id, blob, m.meta, m.flags, m.internaldate)).uid
    except NotImplementedError:
        uid = await _seed(box.dsn, box.mailbox_id, m)
    box.uids.append(uid)
    return uid


async def _pg_mailbox(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        domain = await conn.fetchval(
            "INSERT INTO domains (name) VALUES ('example.org') RETURNING id"
        )
        account = await conn.fetchval(
            "INSERT INTO accounts (address, domain_id, password_hash)"
            " VALUES ('alice@example.org', $1, 'x') RETURNING id",
            domain,
        )
        return int(
            await conn.fetchval(
                "INSERT INTO mailboxes (account_id, name, uidvalidity)"
                " VALUES ($1, 'INBOX', 1) RETURNING id",
                account,
            )
        )
    finally:
        await conn.close()


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
        try:
            mailbox_id = await _mailbox(store)
        except NotImplementedError:
            mailbox_id = await _pg_mailbox(dsn)
        yield Box(store, mailbox_id, dsn)
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
