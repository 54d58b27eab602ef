"""The PostgreSQL read methods answer as the SQLite backend does on the same mail:
UIDs, flags, FETCH rows, bodies from chunks (ranges across chunk boundaries), SELECT,
CHANGEDSINCE, list and conversation pages, SORT rows.

The two stores get the same messages (`twin.put`); ids that are each store's
own (blob ids, thread ids, times of saving) are left out of the comparison.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from pillarbox.message.message_ids import message_ids, references_field
from pillarbox.message.parse import parse
from pillarbox.model import FlagMode, MessageInfo, SearchAll
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres.blobs import CHUNK
from pillarbox.store.postgres.reading import chunk_span, ranges
from tests.store.postgres import twin
from tests.store.postgres.twin import Box, Mail, mail, put

BIG = bytes(range(256)) * (CHUNK * 2 // 256) + b"tail!"  # three chunks, the last short

MAILS = [
    mail(
        b"Subject: one\r\n\r\nfirst body\r\n",
        subject="one",
        headers="Subject: one",
        text="first body",
        flags=frozenset({"\\Seen", "$Label1", "Junk"}),
        internaldate=datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-8))),
        sent_date=datetime(2024, 2, 28, 9, 0, tzinfo=UTC),
        references="<a@x> <b@x>",
    ),
    mail(
        BIG,
        subject="big",
        headers="Subject: big",
        text="binary",
        flags=frozenset({"\\Deleted"}),
        internaldate=datetime(2024, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ),
    mail(b"", subject="empty", headers="Subject: empty", flags=frozenset({"\\Flagged"})),
    mail(b"Subject: four\r\n\r\nx\r\n", subject="Re: one", headers="Subject: Re: one"),
]


@pytest.fixture
async def pg_box(tmp_path: Path) -> AsyncIterator[Box]:
    async with twin.pg_box(tmp_path) as box:
        yield box


@pytest.fixture
async def sqlite_box(tmp_path: Path) -> AsyncIterator[Box]:
    async with twin.sqlite_box(tmp_path) as box:
        yield box


def _comparable(info: MessageInfo) -> MessageInfo:
    return dataclasses.replace(info, blob_id=0, thread_id=0, savedate=info.internaldate)


async def _both(pg_box: Box, sqlite_box: Box) -> None:
    for m in MAILS:
        await put(pg_box, m)
        await put(sqlite_box, m)
    assert pg_box.uids == sqlite_box.uids == [1, 2, 3, 4]


def test_ranges_and_chunk_spans() -> None:
    assert ranges([5, 1, 2, 3, 9, 9, 10]) == ([1, 5, 9], [3, 5, 10])
    assert ranges([]) == ([], [])
    assert chunk_span(0, None)[0] == 0
    assert chunk_span(CHUNK - 1, 2) == (0, 1)
    assert chunk_span(CHUNK, CHUNK) == (1, 1)
    assert chunk_span(10, 0) == (0, -1)


async def test_rows_flags_and_snapshot_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    await _both(pg_box, sqlite_box)
    p, s = pg_box.store, sqlite_box.store
    pb, sb = pg_box.mailbox_id, sqlite_box.mailbox_id
    assert await p.uids(pb) == await s.uids(sb) == [1, 2, 3, 4]
    for wanted in ([1, 2, 3, 4], [4, 1, 1, 3], [], [99], [2, 3, 50]):
        rows, keywords = await p.fetch_flag_bits(pb, wanted)
        want_rows, want_keywords = await s.fetch_flag_bits(sb, wanted)
        assert [r[:2] for r in rows] == [r[:2] for r in want_rows]
        assert {u: sorted(k) for u, k in keywords.items()} == {
            u: sorted(k) for u, k in want_keywords.items()
        }
        assert [(f.uid, f.flags) for f in await p.fetch_flags(pb, wanted)] == [
            (f.uid, f.flags) for f in await s.fetch_flags(sb, wanted)
        ]
        assert [_comparable(i) for i in await p.fetch(pb, wanted)] == [
            _comparable(i) for i in await s.fetch(sb, wanted)
        ]
    pg_uids, pg_status, pg_unseen = await p.select_snapshot(pb)
    sq_uids, sq_status, sq_unseen = await s.select_snapshot(sb)
    assert (pg_uids, pg_unseen) == (sq_uids, sq_unseen) == ([1, 2, 3, 4], 2)
    assert dataclasses.replace(pg_status, uidvalidity=0) == dataclasses.replace(
        sq_status, uidvalidity=0
    )
    assert pg_status.deleted_size == len(BIG)
    assert await p.pop_hidden(pb) == await s.pop_hidden(sb) == set()


async def test_bodies_from_chunks_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    await _both(pg_box, sqlite_box)
    p, s = pg_box.store, sqlite_box.store
    pb, sb = pg_box.mailbox_id, sqlite_box.mailbox_id
    asks: list[tuple[int, int, int | None]] = [
        (2, 0, None),
        (2, CHUNK - 3, 6),
        (2, CHUNK * 2 - 1, None),
        (2, CHUNK * 2, 3),
        (2, len(BIG) + 10, None),
        (3, 0, None),
        (1, 5, 0),
        (7, 0, None),
        (1, 9, 4),
        (2, 17, CHUNK * 3),
    ]
    got = await p.read_messages(pb, asks)
    assert got == await s.read_messages(sb, asks)
    assert got[0] == BIG and got[1] == BIG[CHUNK - 3 : CHUNK + 3] and got[7] is None
    assert await p.read_message(pb, 2, CHUNK, 10) == BIG[CHUNK : CHUNK + 10]
    for args in ((1 << 30, None), (len(MAILS[0].data) + len(BIG), 1000), (1, None)):
        pairs = await p.fetch_with_bodies(pb, [1, 2, 3, 4], args[0], max_each=args[1])
        want = await s.fetch_with_bodies(sb, [1, 2, 3, 4], args[0], max_each=args[1])
        assert [d for _, d in pairs] == [d for _, d in want]
        assert [_comparable(i) for i, _ in pairs] == [_comparable(i) for i, _ in want]


async def test_changes_pages_and_sort_rows_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    await _both(pg_box, sqlite_box)
    p, s = pg_box.store, sqlite_box.store
    pb, sb = pg_box.mailbox_id, sqlite_box.mailbox_id
    for since in (0, 2, 3, 100):
        changed, gone = await p.changes_since(pb, since)
        want_changed, want_gone = await s.changes_since(sb, since)
        assert [(c.uid, c.flags) for c in changed] == [(c.uid, c.flags) for c in want_changed]
        assert gone == want_gone == []
    for kwargs in (
        {},
        {"offset": 1},
        {"offset": 10},
        {"before": 3},
        {"after": 1},
        {"after": 4},
        {"before": 1},
    ):
        page = await p.page_uids(pb, 2, **kwargs)  # type: ignore[arg-type]
        want = await s.page_uids(sb, 2, **kwargs)  # type: ignore[arg-type]
        assert (page.uids, page.newer) == (want.uids, want.newer), kwargs
        assert dataclasses.replace(page.status, uidvalidity=0) == dataclasses.replace(
            want.status, uidvalidity=0
        )
    for limit, offset in ((1, 0), (2, 1), (10, 0), (2, 10)):
        threads, more = await p.thread_page(pb, limit, offset)
        want_threads, want_more = await s.thread_page(sb, limit, offset)
        assert more == want_more
        assert [(t.newest_uid, t.messages, t.unseen) for t in threads] == [
            (t.newest_uid, t.messages, t.unseen) for t in want_threads
        ]
    for refs in (False, True):
        rows = await p.sort_rows(pb, [4, 3, 2, 1, 9], with_references=refs)
        assert rows == await s.sort_rows(sb, [4, 3, 2, 1, 9], with_references=refs)
    assert await p.sort_rows(pb, []) == []


async def test_changes_since_sees_expunged_and_hidden(pg_box: Box, sqlite_box: Box) -> None:
    """Expunged UIDs by MODSEQ (RFC 7162 §3.2.5.1 VANISHED) and POP3's hidden set."""
    await _both(pg_box, sqlite_box)
    answers = []
    for box in (pg_box, sqlite_box):
        s, mailbox = box.store, box.mailbox_id
        before = (await s.mailbox_status(mailbox)).highestmodseq
        await s.set_flags(mailbox, [1, 3], frozenset({"\\Deleted"}), FlagMode.ADD)
        await s.expunge(mailbox)
        await s.pop_hide(mailbox, [4])
        changed, gone = await s.changes_since(mailbox, before)
        answers.append(([(c.uid, c.flags) for c in changed], gone, await s.pop_hidden(mailbox)))
    assert answers[0] == answers[1]
    assert answers[0][1] == [1, 2, 3]


MSG = (
    b"Message-ID: <m2@x.test>\r\nReferences: <m0@x.test>\r\n\t<m1@x.test>\r\n"
    b"Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\r\nDate: Wed, 1 Jan 2020 10:00:00 +0500\r\n\r\nhi\r\n"
)


async def test_sort_rows_of_parsed_mail_and_old_rows(pg_box: Box, sqlite_box: Box) -> None:
    """SORT/THREAD rows from the stored columns, as on SQLite; a blob stored without
    References msg-ids (NULL, as migrated mail) brings its header block instead."""
    for box in (pg_box, sqlite_box):
        for body in (MSG, b"Subject: plain\r\n\r\nx\r\n", MSG):
            await put(box, Mail(body, parse(body)))
    rows = await pg_box.store.sort_rows(pg_box.mailbox_id, [3, 1, 2], with_references=True)
    assert rows == await sqlite_box.store.sort_rows(
        sqlite_box.mailbox_id, [3, 1, 2], with_references=True
    )
    assert rows[0].subject == "Re: café" and rows[0].references == "<m0@x.test> <m1@x.test>"
    assert rows[0].sent_date is not None and rows[0].sent_date.timestamp() == 1577854800
    conn = await asyncpg.connect(pg_box.dsn)
    try:
        await conn.execute("UPDATE blobs SET thread_refs = NULL")
    finally:
        await conn.close()
    rows = await pg_box.store.sort_rows(pg_box.mailbox_id, [1, 2, 3], with_references=True)
    assert [r.references for r in rows] == [None, None, None]
    assert message_ids(references_field(rows[0].header_text)) == ["<m0@x.test>", "<m1@x.test>"]
    assert message_ids(references_field(rows[1].header_text)) == []


async def test_missing_mailbox_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    """What a mailbox that does not exist answers, read by read."""
    for box in (pg_box, sqlite_box):
        s = box.store
        with pytest.raises(NotFound):
            await s.select_snapshot(999)
        with pytest.raises(NotFound):
            await s.page_uids(999, 10)
        with pytest.raises(NotFound):
            await s.thread_page(999, 10)
        with pytest.raises(NotFound):
            await s.read_message(999, 1)
        assert await s.uids(999) == []
        assert await s.fetch(999, [1]) == []
        assert await s.fetch_flag_bits(999, [1]) == ([], {})
        assert await s.read_messages(999, [(1, 0, None)]) == [None]
        assert await s.changes_since(999, 0) == ([], [])
        assert await s.search(999, SearchAll()) == []
        assert await s.sort_rows(999, [1]) == []


async def test_select_snapshot_is_consistent_under_appends(pg_box: Box) -> None:
    """SELECT's UIDs and counters come from one snapshot while appends commit: the
    count is the list's length, UIDNEXT is above every listed UID, the first unseen
    UID is listed, and nothing listed ever disappears."""
    s, box = pg_box.store, pg_box.mailbox_id
    done = asyncio.Event()

    async def writer() -> None:
        try:
            for i in range(30):
                seen = frozenset({"\\Seen"}) if i % 2 else frozenset()
                await put(pg_box, mail(b"Subject: %d\r\n\r\nx\r\n" % i, flags=seen))
        finally:
            done.set()

    async def reader() -> int:
        last: list[int] = []
        rounds = 0
        while not done.is_set() or rounds == 0:
            uids, status, first_unseen = await s.select_snapshot(box)
            assert status.messages == len(uids) and uids == sorted(uids)
            assert not uids or status.uidnext > uids[-1]
            assert first_unseen is None or first_unseen in uids
            assert uids[: len(last)] == last
            last, rounds = uids, rounds + 1
        return rounds

    _, rounds = await asyncio.gather(writer(), reader())
    assert rounds >= 1
    assert (await s.select_snapshot(box))[0] == list(range(1, 31))
