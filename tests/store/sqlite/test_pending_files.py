"""Rows committed while their message file was still being synced (`pending_files`).

A delivery's row now commits while its file's fsync runs; the answer waits for both.
These tests hold a file's sync open (a `FileBlob` whose sync future the test settles: the
file itself is real and written by the store) to stand where a crash can land: after the
commit, before the sync. They pin that the answer waits for the sync, that a failed sync
removes the rows, and that the next open removes the rows of a listed file that is short
or different and keeps (and unlists) one whose bytes check out.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from concurrent.futures import Future
from pathlib import Path

import pytest

from pillarbox.services.delivery import StoreDelivery
from pillarbox.store.errors import NotFound, StoreUnavailable
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.blobs import FileBlob
from tests.store.conftest import dummy_meta, write_blob

TIMEOUT = 30.0


async def _until(probe: object, what: str) -> None:
    """Poll an async `probe` until it is true; fail after TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await probe():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not within {TIMEOUT}s"
        await asyncio.sleep(0.01)  # polling for the condition, bounded by the deadline


def _pending(data_dir: Path) -> set[int]:
    with sqlite3.connect(data_dir / "pillarbox.db") as conn:
        return {r[0] for r in conn.execute("SELECT blob_id FROM pending_files")}


async def _held_blob(store: SqliteStore, data: bytes) -> tuple[FileBlob, Future[None]]:
    """A real, written file whose handle says its sync is still running."""
    real = await write_blob(store, data)
    assert isinstance(real, FileBlob) and real.synced is not None
    await asyncio.wrap_future(real.synced)
    held: Future[None] = Future()
    held.set_running_or_notify_cancel()
    return FileBlob(real.blob_id, real.size, real.crc, synced=held), held


async def _inboxes(store: SqliteStore, n: int) -> list[int]:
    await store.add_domain("example.org")
    boxes = []
    for i in range(n):
        account = await store.add_account(f"u{i}@example.org", "x")
        box = await store.get_mailbox(account.id, "INBOX")
        assert box is not None
        boxes.append(box.id)
    return boxes


def _message(n: int) -> bytes:
    return b"Subject: message %d\r\nFrom: a@example.org\r\n\r\n" % n + b"body line\r\n" * 200


async def test_answer_waits_for_the_file_sync_then_unlists_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        (box,) = await _inboxes(store, 1)
        delivered, held_d = await _held_blob(store, _message(1))
        appended, held_a = await _held_blob(store, _message(2))
        deliver = asyncio.create_task(
            store.deliver([StoreDelivery(box, delivered, dummy_meta(_message(1)))])
        )
        append = asyncio.create_task(store.append(box, appended, dummy_meta(_message(2))))

        async def both_committed() -> bool:
            return len(await store.uids(box)) == 2

        await _until(both_committed, "both rows committed")
        assert _pending(tmp_path) == {delivered.blob_id, appended.blob_id}
        assert not deliver.done() and not append.done()  # no answer before the sync
        held_d.set_result(None)
        held_a.set_result(None)
        assert len(await deliver) == 1
        await append

        async def unlisted() -> bool:
            return not _pending(tmp_path)

        await _until(unlisted, "pending_files emptied once the syncs completed")
    finally:
        await store.close()


async def test_failed_sync_removes_the_rows_and_fails(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        (box,) = await _inboxes(store, 1)
        blob, held = await _held_blob(store, _message(1))
        task = asyncio.create_task(store.deliver([StoreDelivery(box, blob, dummy_meta(b"x"))]))

        async def committed() -> bool:
            return len(await store.uids(box)) == 1

        await _until(committed, "row committed")
        held.set_exception(OSError(errno.EIO, "I/O error"))
        with pytest.raises(StoreUnavailable):
            await task
        assert await store.uids(box) == []
        assert _pending(tmp_path) == set()
    finally:
        await store.close()


async def test_open_removes_rows_whose_listed_file_is_bad(tmp_path: Path) -> None:
    """A crash after the commit, before the sync: rows of a short, missing or different
    file go (with every copy of a shared blob), a file whose bytes check out stays."""
    store = SqliteStore(tmp_path)
    await store.open()
    tasks: list[asyncio.Task[object]] = []
    try:
        box_a, box_b = await _inboxes(store, 2)
        good, _ = await _held_blob(store, _message(1))
        short, _ = await _held_blob(store, _message(2))
        changed, _ = await _held_blob(store, _message(3))  # one blob, two mailboxes
        missing, _ = await _held_blob(store, _message(4))
        for blob, boxes in ((good, [box_a]), (short, [box_a]), (changed, [box_a, box_b])):
            meta = dummy_meta(_message(0))
            deliveries = [StoreDelivery(b, blob, meta) for b in boxes]
            tasks.append(asyncio.create_task(store.deliver(deliveries)))
        tasks.append(asyncio.create_task(store.append(box_b, missing, dummy_meta(b"x"))))

        async def committed() -> bool:
            return len(await store.uids(box_a)) == 3 and len(await store.uids(box_b)) == 2

        await _until(committed, "rows committed")
        assert not any(t.done() for t in tasks)
        good_uid = (await store.uids(box_a))[0]
    finally:
        for t in tasks:
            t.cancel()  # the "crash": nobody was answered, the entries stay
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
    assert _pending(tmp_path) == {b.blob_id for b in (good, short, changed, missing)}

    path = {
        b.blob_id: tmp_path / "blobs" / f"{b.blob_id:016x}"[:2] / f"{b.blob_id:016x}"
        for b in (good, short, changed, missing)
    }
    with open(path[short.blob_id], "r+b") as f:
        f.truncate(short.size // 2)
    raw = bytearray(path[changed.blob_id].read_bytes())
    raw[len(raw) // 2] ^= 0x20  # same size, one bit different
    path[changed.blob_id].write_bytes(bytes(raw))
    path[missing.blob_id].unlink()

    # The CLI's open (beside a live server) leaves the list alone.
    cli = SqliteStore(tmp_path, collect_orphans=False)
    await cli.open()
    await cli.close()
    assert len(_pending(tmp_path)) == 4

    store = SqliteStore(tmp_path)
    await store.open()
    try:
        assert await store.uids(box_a) == [good_uid]
        assert await store.uids(box_b) == []
        assert await store.read_blob(good.blob_id) == _message(1)
        for blob in (short, changed, missing):
            with pytest.raises(NotFound):
                await store.read_blob(blob.blob_id)
        assert _pending(tmp_path) == set()
    finally:
        await store.close()
