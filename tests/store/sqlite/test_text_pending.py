"""The SEARCH text of a delivery goes to `text_pending` with its row and into search.db
after the commit (issue 18: one fsync per acknowledged message).

What a user would see: a message SEARCH finds the moment its delivery returned, also
while the index has not taken its text yet; after a crash (here: the hand-off to the
index thread cut, then the store closed) the next open indexes what was pending, and
an expunged message's pending text goes with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from pillarbox.model import FlagMode, SearchHeader, SearchText
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.text_index import TEXT_DB_NAME
from tests.store.conftest import dummy_meta, write_blob

TIMEOUT = 30.0


def _pending(data: Path) -> list[int]:
    with sqlite3.connect(data / "pillarbox.db") as conn:
        return [r[0] for r in conn.execute("SELECT blob_id FROM text_pending ORDER BY blob_id")]


def _indexed(data: Path) -> list[int]:
    with sqlite3.connect(data / TEXT_DB_NAME) as conn:
        return [r[0] for r in conn.execute("SELECT rowid FROM blob_text ORDER BY rowid")]


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def _append(store: SqliteStore, mailbox_id: int, word: str) -> tuple[int, int]:
    data = f"Subject: {word}\r\n\r\n{word}\r\n".encode()
    blob = await write_blob(store, data)
    meta = dummy_meta(data, subject=word, headers=f"Subject: {word}\nX-Word: {word}", text=word)
    result = await store.append(mailbox_id, blob, meta)
    return result.uid, blob.blob_id


async def test_pending_text_is_searchable_then_indexed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = SqliteStore(data)
    await store.open()
    await store.add_domain("example.org")
    account = await store.add_account("a@example.org", "h")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    # The indexed hand-off works: a delivery's text reaches search.db, and leaves
    # text_pending.
    uid1, blob1 = await _append(store, inbox.id, "firstword")
    await _until(lambda: blob1 in _indexed(data) and not _pending(data), "indexed")

    # Cut the hand-off (as a crash right after the commit would): the text stays
    # pending, and SEARCH still finds the message by every key that reads text.
    assert store._writer is not None
    store._writer._index_text = None
    uid2, blob2 = await _append(store, inbox.id, "secondword")
    uid3, blob3 = await _append(store, inbox.id, "thirdword")
    assert _pending(data) == sorted([blob2, blob3])
    assert blob2 not in _indexed(data)
    assert await store.search(inbox.id, SearchText("secondword", body_only=True)) == [uid2]
    assert await store.search(inbox.id, SearchText("SECONDWORD", body_only=False)) == [uid2]
    assert await store.search(inbox.id, SearchText("rd", body_only=True)) == [uid1, uid2, uid3]
    assert await store.search(inbox.id, SearchHeader("x-word", "thirdword")) == [uid3]
    # An expunged message's pending text goes with its blob row.
    await store.set_flags(inbox.id, [uid3], frozenset({"\\Deleted"}), mode=FlagMode.ADD)
    assert await store.expunge(inbox.id) == [uid3]
    assert _pending(data) == [blob2]
    await store.close()

    # The next open indexes what was left pending.
    store = SqliteStore(data)
    await store.open()
    try:
        await _until(lambda: blob2 in _indexed(data) and not _pending(data), "leftover indexed")
        assert await store.search(inbox.id, SearchText("secondword", body_only=True)) == [uid2]
        assert await store.search(inbox.id, SearchText("thirdword", body_only=True)) == []
    finally:
        await store.close()
