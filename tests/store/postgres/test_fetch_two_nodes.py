"""Fetch sources across nodes: two `PgStore`s (two node ids) on one database.

The contract test (`tests/store/test_fetch_sources.py`) shows the rules on one store;
here two stores with pools of their own, as two nodes are, race for the same rows at the
same time: claims, fetched records, and deliveries of one remote message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pillarbox.model import AppendResult, MessageMeta
from pillarbox.model.fetch import FetchedRecord
from pillarbox.store.api import BlobHandle
from pillarbox.store.errors import AlreadyExists, NotFound
from pillarbox.store.postgres import PgStore, core
from tests import pg
from tests.store.conftest import dummy_meta, write_blob
from tests.store.test_fetch_sources import new_source

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[PgStore, PgStore, int]]:
    """Two opened stores on one fresh database, and the id of an account there."""
    dsn = pg.database(str(tmp_path / "data"))
    a = PgStore(dsn, node_id="node-a", pool_min=1, pool_max=4)
    b = PgStore(dsn, node_id="node-b", pool_min=1, pool_max=4)
    try:
        await a.open()
        await b.open()
        await a.add_domain("example.org")
        account_id = (await b.add_account("alice@example.org", "h")).id
        yield a, b, account_id
    finally:
        await a.close()
        await b.close()


async def test_two_nodes_never_both_hold_one_source(
    nodes: tuple[PgStore, PgStore, int],
) -> None:
    """Both nodes ask for every source at once, several times over; each source goes to
    exactly one of them, which keeps it until it lets go; then the other may take it."""
    a, b, account_id = nodes
    sources = [await a.add_fetch_source(new_source(account_id)) for _ in range(5)]
    soon = datetime.now(UTC) + timedelta(minutes=10)
    for source in sources:
        attempts = [
            store.claim_fetch_source(source.id, store.node_id, soon)
            for _ in range(4)
            for store in (a, b)
        ]
        results = await asyncio.gather(*attempts)
        winners = {store.node_id for store, got in zip([a, b] * 4, results, strict=True) if got}
        assert len(winners) == 1, (source.id, winners)
        holder = a if winners == {"node-a"} else b
        other = b if holder is a else a
        assert await other.claim_fetch_source(source.id, other.node_id, soon) is None
        await other.release_fetch_source(source.id, other.node_id)  # not its claim: no-op
        assert await other.claim_fetch_source(source.id, other.node_id, soon) is None
        await holder.release_fetch_source(source.id, holder.node_id)
        assert await other.claim_fetch_source(source.id, other.node_id, soon) is not None
        assert await holder.claim_fetch_source(source.id, holder.node_id, soon) is None


async def test_an_expired_claim_passes_to_the_other_node(
    nodes: tuple[PgStore, PgStore, int],
) -> None:
    """A node that died holding a claim holds it only until its time is up."""
    a, b, account_id = nodes
    source = await a.add_fetch_source(new_source(account_id))
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await a.claim_fetch_source(source.id, "node-a", past) is not None
    claimed = await b.claim_fetch_source(source.id, "node-b", T0 + timedelta(days=36500))
    assert claimed is not None and claimed.id == source.id
    assert await a.claim_fetch_source(source.id, "node-a", past) is None


async def test_one_remote_message_is_recorded_once_across_nodes(
    nodes: tuple[PgStore, PgStore, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overlapping batches over several folders, in different orders, written by both
    nodes at once, end up once each and never deadlock (retries are off here, so a
    deadlock would fail a batch); each folder's last UID is the highest recorded; a
    removed source takes its records along, and a record for it afterwards is NotFound."""
    monkeypatch.setattr(core, "RETRIES", 0)
    a, b, account_id = nodes
    source = await a.add_fetch_source(new_source(account_id))
    records = [
        FetchedRecord(source.id, f"F{u % 3}", str(u), f"d{u}", T0, 9, u) for u in range(1, 61)
    ]
    batches = [records[i::2][::-1] if i % 2 else records[i::3] + records for i in range(8)]
    for round_ in range(3):
        await asyncio.gather(
            *(
                (a if (i + round_) % 2 else b).mark_fetched(batch[round_:] + batch[:round_])
                for i, batch in enumerate(batches)
            )
        )
    for folder in ("F0", "F1", "F2"):
        entries = await b.fetched(source.id, folder)
        expected = [u for u in range(1, 61) if f"F{u % 3}" == folder]
        assert sorted(int(e.remote_id) for e in entries) == expected
    folders = await a.fetch_folders(source.id)
    assert [(f.folder, f.uidvalidity, f.last_uid) for f in folders] == [
        ("F0", 9, 60),
        ("F1", 9, 58),
        ("F2", 9, 59),
    ]
    await b.remove_fetch_source(account_id, source.id)
    assert await a.fetched(source.id, "F0") == []
    with pytest.raises(NotFound):
        await a.mark_fetched(records[:1])


@dataclass(frozen=True)
class _Delivery:
    mailbox_id: int
    blob: BlobHandle
    meta: MessageMeta
    flags: frozenset[str]
    internaldate: datetime


async def test_one_remote_message_is_delivered_once_across_nodes(
    nodes: tuple[PgStore, PgStore, int],
) -> None:
    """Two nodes that fetched the same remote message deliver it at the same moment: one
    copy is stored with its record, the other node gets AlreadyExists and stores nothing
    (no second message, no UID used up in vain)."""
    a, b, account_id = nodes
    source = await a.add_fetch_source(new_source(account_id))
    inbox = await a.get_mailbox(account_id, "INBOX")
    assert inbox is not None
    data = b"Subject: once\r\n\r\nbody\r\n"
    for uid in range(1, 6):
        record = FetchedRecord(source.id, "INBOX", str(uid), f"d{uid}", T0, 7, uid)
        blobs = [await write_blob(store, data) for store in (a, b)]
        results = await asyncio.gather(
            *(
                store.deliver_fetched(
                    _Delivery(inbox.id, blob, dummy_meta(data), frozenset(), T0), record
                )
                for store, blob in zip((a, b), blobs, strict=True)
            ),
            return_exceptions=True,
        )
        stored = [r for r in results if isinstance(r, AppendResult)]
        refused = [r for r in results if isinstance(r, AlreadyExists)]
        assert (len(stored), len(refused)) == (1, 1), results
        assert stored[0].uid == uid
    assert await b.uids(inbox.id) == [1, 2, 3, 4, 5]
    copies = await a.fetched_copies(source.id, "INBOX", 7)
    assert [(c.remote_uid, c.uid) for c in copies] == [(u, u) for u in range(1, 6)]
