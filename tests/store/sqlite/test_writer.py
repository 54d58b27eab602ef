"""The SQLite backend's writer: group commit, savepoints per operation, the separate text
index and the background WAL checkpointer. Behaviour only SQLite has; the contract
tests (`test_contract.py`) cover what every backend must do."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pillarbox.model import (
    FlagMode,
    QueuedRecipient,
    RecipientOutcome,
    RecipientState,
    SearchText,
)
from pillarbox.store.errors import NotFound
from pillarbox.store.sqlite import DB_NAME, SqliteStore
from pillarbox.store.sqlite.held_files import HeldFiles
from tests.store.conftest import Env, blob_gone, dummy_meta, write_blob


@pytest.fixture
def backend() -> str:
    """These tests are about the SQLite backend only (the `env` fixture's store)."""
    return "sqlite"


async def test_failing_operation_does_not_poison_batch(env: Env) -> None:
    """Operations that fail inside a group commit fail alone; the others commit."""
    s, box = env.store, env.inbox.id
    blob = await write_blob(s, b"ok")
    meta = dummy_meta(b"ok")
    coros = []
    for i in range(40):
        target = box if i % 2 == 0 else 9999
        coros.append(s.append(target, blob, meta))
    results = await asyncio.gather(*coros, return_exceptions=True)
    assert [isinstance(r, NotFound) for r in results] == [i % 2 == 1 for i in range(40)]
    assert await s.uids(box) == list(range(1, 21))


async def test_text_of_a_group_commit_is_searchable_and_failed_ops_leave_none(env: Env) -> None:
    """Concurrent deliveries share one commit, and their full-text rows with it: every
    delivered message is found by SEARCH TEXT at once, and a delivery that failed inside
    the same batch (unknown mailbox) leaves no text behind to be found later."""
    s, box = env.store, env.inbox.id
    coros = []
    for i in range(30):
        data = f"Subject: batch {i}\r\n\r\nword{i:03d}zz\r\n".encode()
        blob = await write_blob(s, data)
        meta = dummy_meta(data, headers=f"Subject: batch {i}\n", text=f"word{i:03d}zz\n")
        coros.append(s.append(box if i % 3 else 9999, blob, meta))
    results = await asyncio.gather(*coros, return_exceptions=True)
    ok = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    assert ok == [i for i in range(30) if i % 3]
    uid_of = {i: r.uid for i, r in enumerate(results) if not isinstance(r, BaseException)}
    for i in range(30):
        found = await s.search(box, SearchText(f"word{i:03d}zz"))
        assert found == ([uid_of[i]] if i in uid_of else [])
    assert sorted(await s.search(box, SearchText("zz"))) == sorted(uid_of.values())


async def test_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    """Commits never checkpoint themselves (the writer runs with wal_autocheckpoint off),
    yet committed pages reach the database file soon after, through the background
    checkpointer, even when far fewer than SQLite's automatic 1,000 pages were written."""

    s = SqliteStore(tmp_path / "data")
    await s.open()
    try:
        await s.add_domain("example.org")
        account = await s.add_account("alice@example.org", "h")
        inbox = await s.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        db = tmp_path / "data" / DB_NAME

        def size_with_wal() -> int:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                count = conn.execute("PRAGMA page_count").fetchone()[0]
                return int(count * conn.execute("PRAGMA page_size").fetchone()[0])

        async def settled_size() -> int:
            # Background checkpoints come within CHECKPOINT_INTERVAL of a commit; the
            # deadline only guards against a hang.
            async with asyncio.timeout(30):
                while db.stat().st_size < size_with_wal():
                    await asyncio.sleep(0.02)
            return db.stat().st_size

        before = await settled_size()
        for i in range(60):  # rows enough to need new pages (the text goes to search.db)
            data = f"Subject: {i}\r\n\r\n".encode() + b"text " * 2000
            blob = await write_blob(s, data)
            await s.append(inbox.id, blob, dummy_meta(data, text="text " * 2000))
        assert await settled_size() > before
    finally:
        await s.close()


async def test_queue_outcomes_commit_synchronously(env: Env) -> None:
    """A recorded outcome is on disk when record_outcomes returns (its batch commits with
    synchronous=FULL, an fsync of the WAL), even right after flag changes, which commit
    without one: it is what stops a restart from sending again what a peer accepted. A
    claim alone commits without an fsync (a lost lease died with its worker)."""
    s = env.store
    assert isinstance(s, SqliteStore) and s._writer is not None
    writer = s._writer
    uid = await env.add()
    qid = await s.enqueue("a@example.org", [QueuedRecipient("r@x.test")], await write_blob(s, b"q"))

    async def flag() -> None:
        await s.set_flags(env.inbox.id, [uid], frozenset({"\\Seen"}), FlagMode.ADD)
        assert writer._synchronous == "NORMAL"

    await flag()
    await s.claim_queue(datetime.now(UTC) + timedelta(seconds=1), 10, 60)
    assert writer._synchronous == "NORMAL"
    outcome = RecipientOutcome(0, RecipientState.DELIVERED, "2.0.0", "250 ok", "mx.x.test")
    await s.record_outcomes(qid, [outcome])
    assert writer._synchronous == "FULL"
    await flag()
    await s.reschedule(qid, datetime.now(UTC), "")
    assert writer._synchronous == "FULL"
    await flag()
    assert await s.remove_queued(qid)
    assert writer._synchronous == "FULL"


def test_held_files_wait_for_a_sync_that_covers_their_commit(tmp_path: Path) -> None:
    """Files freed by an unsynced commit are released only by a sync that covers it:
    a later synchronous commit's (no fsync of their own), else this thread's own fsync
    (here: at stop); never a file of a commit no sync covered without an fsync."""
    wal = tmp_path / "pillarbox.db-wal"
    wal.write_bytes(b"")
    released: list[list[int]] = []
    held = HeldFiles(wal, released.append, delay=3600)
    held.start()
    held.hold(1, [10, 11])
    held.durable(1)  # a synchronous commit after commit 1
    held.stop()
    held.join(10)
    assert released == [[10, 11]] and held.syncs == 0

    released.clear()
    held = HeldFiles(wal, released.append, delay=3600)
    held.start()
    held.hold(1, [10, 11])
    held.durable(1)
    held.hold(2, [12])  # no synchronous commit after it
    held.stop()
    held.join(10)
    assert released == [[10, 11, 12]] and held.syncs == 1


async def test_an_expunge_answers_before_its_file_goes_and_the_file_goes(env: Env) -> None:
    """An EXPUNGE with nothing else queued is answered without an fsync; its message's
    file is removed right after, by the held-files thread's own sync."""
    s, box = env.store, env.inbox.id
    data = b"Subject: x\r\n\r\nbody\r\n"
    uid = (await s.append(box, await write_blob(s, data), dummy_meta(data))).uid
    [info] = await s.fetch(box, [uid])
    await s.set_flags(box, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    assert await s.expunge(box) == [uid]
    assert await blob_gone(s, info.blob_id)
