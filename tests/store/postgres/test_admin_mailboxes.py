"""The PostgreSQL backend's accounts and mailboxes across nodes, and over seeded rows.

Pins what only PostgreSQL can get wrong: two stores on one database (two nodes) never
hand out one UIDVALIDITY or mailbox id twice, hold a special use once, and claim each
\\Recent UID once; mailbox ids are never reused; and, over message rows seeded with SQL
(so these run before the message writes exist), STATUS counts, deleting a mailbox, the
INBOX rename and removing an account do to the rows, quota counters and change events
what the SQLite backend does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import (
    Change,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
)
from pillarbox.model.identities import NewIdentity
from pillarbox.store.api import Subscription
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import Conflict
from pillarbox.store.postgres import PgStore
from tests import pg

SEEN, DELETED = 1, 8  # bits of \Seen and \Deleted in messages.flags


@dataclass
class Nodes:
    dsn: str
    one: PgStore
    two: PgStore
    account_id: int


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    dsn = pg.database(str(tmp_path / "data"))
    one = PgStore(dsn, bus=InProcessChangeBus(), node_id="one", pool_min=1, pool_max=4)
    two = PgStore(dsn, bus=InProcessChangeBus(), node_id="two", pool_min=1, pool_max=4)
    await one.open()
    await two.open()
    try:
        await one.add_domain("example.org")
        account = await one.add_account("alice@example.org", "$argon2id$dummy")
        yield Nodes(dsn, one, two, account.id)
    finally:
        await one.close()
        await two.close()


async def _seed(dsn: str, mailbox_id: int, rows: list[tuple[int, int, list[str]]]) -> None:
    """Message rows (size, flag bits, keywords) appended to a mailbox the way `append`
    leaves them: UIDs and one MODSEQ from the mailbox's counters, a blob row each."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            first, modseq = await conn.fetchrow(
                "UPDATE mailboxes SET uidnext = uidnext + $2, highestmodseq = highestmodseq + 1"
                " WHERE id = $1 RETURNING uidnext - $2, highestmodseq",
                mailbox_id,
                len(rows),
            )
            for i, (size, flags, keywords) in enumerate(rows):
                blob = await conn.fetchval(
                    "INSERT INTO blobs (size) VALUES ($1) RETURNING id", size
                )
                await conn.execute(
                    "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, size,"
                    " blob_id, thread_id) VALUES ($1, $2, $3, $4, 0, $5, $6, $6)",
                    mailbox_id,
                    first + i,
                    modseq,
                    flags,
                    size,
                    blob,
                )
                for keyword in keywords:
                    await conn.execute(
                        "INSERT INTO keywords (mailbox_id, uid, keyword) VALUES ($1, $2, $3)",
                        mailbox_id,
                        first + i,
                        keyword,
                    )
    finally:
        await conn.close()


async def _count(dsn: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _next(sub: Subscription) -> Change:
    return await asyncio.wait_for(anext(sub), 5)


async def test_two_nodes_never_share_a_uidvalidity_or_an_id(nodes: Nodes) -> None:
    """RFC 9051 §2.3.1.1: mailboxes created at once on two nodes all get distinct
    UIDVALIDITYs (the settings row's lock) and ids; a deleted id is never given again
    (RFC 8474 §4: the id is the MAILBOXID)."""
    created = await asyncio.gather(
        *(
            (nodes.one if i % 2 else nodes.two).create_mailbox(nodes.account_id, f"Box {i:02}")
            for i in range(20)
        )
    )
    boxes = await nodes.one.list_mailboxes(nodes.account_id)
    assert len({b.uidvalidity for b in boxes}) == len(boxes) == 26
    assert len({b.id for b in created}) == 20
    highest = max(b.id for b in boxes)
    await nodes.two.delete_mailbox(nodes.account_id, "Box 19")
    again = await nodes.one.create_mailbox(nodes.account_id, "Box 19")
    assert again.id > highest
    assert again.uidvalidity > max(b.uidvalidity for b in boxes)


async def test_a_special_use_is_held_once_across_nodes(nodes: Nodes) -> None:
    """Two nodes creating a mailbox with one special use at once: one wins, the other
    gets Conflict and creates nothing."""
    results = await asyncio.gather(
        nodes.one.create_mailbox(nodes.account_id, "Starred A", "\\Flagged"),
        nodes.two.create_mailbox(nodes.account_id, "Starred B", "\\flagged"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Mailbox"]
    names = {b.name for b in await nodes.one.list_mailboxes(nodes.account_id)}
    assert len(names & {"Starred A", "Starred B"}) == 1


async def test_recent_is_claimed_once_across_nodes(nodes: Nodes) -> None:
    """RFC 3501 §2.3.2: of claims at once on two nodes, one gets the old watermark."""
    inbox = await nodes.one.get_mailbox(nodes.account_id, "INBOX")
    assert inbox is not None
    await _seed(nodes.dsn, inbox.id, [(10, 0, []), (20, 0, []), (30, 0, [])])
    assert await nodes.two.count_recent(inbox.id) == 3
    firsts = await asyncio.gather(
        *((nodes.one if i % 2 else nodes.two).claim_recent(inbox.id, 3) for i in range(6))
    )
    assert sorted(firsts) == [0, 3, 3, 3, 3, 3]
    assert await nodes.one.count_recent(inbox.id) == 0
    assert await nodes.two.claim_recent(inbox.id, 1) == 3


async def test_list_order_is_byte_order_with_inbox_first(nodes: Nodes) -> None:
    """LIST order is SQLite's BINARY order whatever the database's collation: INBOX
    first, then by bytes (uppercase before lowercase, "Ä" after "z")."""
    for name in ("zeta", "Äpfel", "alpha", "Beta"):
        await nodes.one.create_mailbox(nodes.account_id, name)
    await nodes.one.set_subscribed(nodes.account_id, "aardvark", True)
    names = [b.name for b in await nodes.two.list_mailboxes(nodes.account_id)]
    assert names == [
        "INBOX", "Archive", "Beta", "Drafts", "Junk", "Sent", "Trash", "alpha", "zeta", "Äpfel"
    ]  # fmt: skip
    subs = await nodes.two.list_subscriptions(nodes.account_id)
    assert subs[0] == "INBOX" and subs[-1] == "aardvark"


async def test_status_counts_seeded_rows(nodes: Nodes) -> None:
    """STATUS: messages, unseen, deleted, sizes, UIDNEXT from one snapshot."""
    inbox = await nodes.one.get_mailbox(nodes.account_id, "INBOX")
    assert inbox is not None
    empty = await nodes.one.mailbox_status(inbox.id)
    assert (empty.messages, empty.unseen, empty.size, empty.uidnext) == (0, 0, 0, 1)
    await _seed(nodes.dsn, inbox.id, [(10, SEEN, []), (20, DELETED, []), (30, 0, ["$Work"])])
    st = await nodes.two.mailbox_status(inbox.id)
    assert (st.messages, st.unseen, st.deleted, st.size, st.uidnext) == (3, 2, 1, 60, 4)
    assert st.deleted_size == 20 and st.highestmodseq == inbox.highestmodseq + 1
    assert await nodes.two.quota_usage(nodes.account_id) == 60
    assert (await nodes.two.quota(nodes.account_id)).messages_used == 3


async def test_delete_mailbox_drops_its_rows(nodes: Nodes) -> None:
    """Deleting a mailbox removes its messages, keywords and QRESYNC rows, gives back
    their quota and stamps their blobs for the janitor; MailboxesChanged follows."""
    box = await nodes.one.create_mailbox(nodes.account_id, "Old")
    await _seed(nodes.dsn, box.id, [(10, 0, ["$A"]), (20, 0, [])])
    async with asyncpg.create_pool(nodes.dsn, min_size=1, max_size=1) as pool:
        await pool.execute("INSERT INTO expunged VALUES ($1, 9, 1)", box.id)
    sub = nodes.one.bus.subscribe(nodes.account_id)
    await nodes.one.delete_mailbox(nodes.account_id, "Old")
    assert await _next(sub) == MailboxesChanged(nodes.account_id)
    for table in ("messages", "keywords", "expunged"):
        assert (
            await _count(nodes.dsn, f"SELECT count(*) FROM {table} WHERE mailbox_id = $1", box.id)
            == 0
        )
    assert await nodes.two.quota_usage(nodes.account_id) == 0
    assert (
        await _count(
            nodes.dsn, "SELECT count(*) FROM blobs WHERE refs <= 0 AND unreferenced_at IS NOT NULL"
        )
        == 2
    )
    assert await nodes.two.get_mailbox_by_id(box.id) is None
    await sub.aclose()


async def test_rename_inbox_moves_seeded_rows(nodes: Nodes) -> None:
    """RFC 9051 §6.3.6: INBOX's messages move to the new mailbox with their flags and
    keywords; INBOX stays, empty, with the moved UIDs recorded as expunged; the events
    are the SQLite backend's (added, expunged, mailboxes changed)."""
    inbox = await nodes.one.get_mailbox(nodes.account_id, "INBOX")
    assert inbox is not None
    await _seed(nodes.dsn, inbox.id, [(10, SEEN, ["$Work"]), (20, 0, [])])
    sub = nodes.one.bus.subscribe(nodes.account_id)
    await nodes.one.rename_mailbox(nodes.account_id, "INBOX", "Old mail")
    old = await nodes.two.get_mailbox(nodes.account_id, "Old mail")
    assert old is not None and old.uidnext == 3
    added = await _next(sub)
    assert isinstance(added, MessagesAdded) and added.mailbox_id == old.id
    assert [(r.uid, r.flags) for r in added.rows] == [(1, {"\\Seen", "$Work"}), (2, set())]
    gone = await _next(sub)
    assert isinstance(gone, MessagesExpunged) and gone.uids == (1, 2)
    assert await _next(sub) == MailboxesChanged(nodes.account_id)
    assert (
        await _count(nodes.dsn, "SELECT count(*) FROM messages WHERE mailbox_id = $1", inbox.id)
        == 0
    )
    assert (
        await _count(nodes.dsn, "SELECT count(*) FROM expunged WHERE mailbox_id = $1", inbox.id)
        == 2
    )
    assert (
        await _count(nodes.dsn, "SELECT count(*) FROM keywords WHERE mailbox_id = $1", old.id) == 1
    )
    assert await nodes.two.quota_usage(nodes.account_id) == 30
    status = await nodes.two.mailbox_status(inbox.id)
    assert status.uidnext == 3 and status.uidvalidity == inbox.uidvalidity
    await sub.aclose()


async def test_remove_account_takes_everything(nodes: Nodes) -> None:
    """Removing an account removes its mailboxes, rows, subscriptions, identities and
    trusted senders; another account keeps its own."""
    bob = await nodes.two.add_account("bob@example.org", "$argon2id$dummy")
    inbox = await nodes.one.get_mailbox(nodes.account_id, "INBOX")
    assert inbox is not None
    await _seed(nodes.dsn, inbox.id, [(10, 0, ["$A"])])
    await nodes.one.add_identity(NewIdentity(nodes.account_id, "alice@example.org"))
    await nodes.one.add_image_sender(nodes.account_id, "news@example.com")
    await nodes.one.add_image_sender(bob.id, "news@example.com")
    await nodes.two.remove_account("alice@example.org")
    assert await nodes.one.get_account("alice@example.org") is None
    assert await nodes.one.list_mailboxes(nodes.account_id) == []
    assert await nodes.one.list_subscriptions(nodes.account_id) == []
    for table in ("messages", "keywords", "identities", "image_senders"):
        column = "mailbox_id" if table in ("messages", "keywords") else "account_id"
        key = inbox.id if column == "mailbox_id" else nodes.account_id
        assert (
            await _count(nodes.dsn, f"SELECT count(*) FROM {table} WHERE {column} = $1", key) == 0
        )
    assert await nodes.one.list_image_senders(bob.id) == ["news@example.com"]
    assert len(await nodes.one.list_mailboxes(bob.id)) == 6
    with pytest.raises(Conflict):
        await nodes.one.remove_domain("example.org")


async def test_remove_account_while_another_node_creates_a_mailbox(nodes: Nodes) -> None:
    """A mailbox created on one node while another removes the account goes with the
    account, or its creation fails NotFound; the removal itself never fails."""
    results = await asyncio.gather(
        *(nodes.one.create_mailbox(nodes.account_id, f"Late {i}") for i in range(5)),
        nodes.two.remove_account("alice@example.org"),
        return_exceptions=True,
    )
    assert results[-1] is None
    assert {type(r).__name__ for r in results[:-1]} <= {"Mailbox", "NotFound"}
    assert await _count(nodes.dsn, "SELECT count(*) FROM mailboxes") == 0
