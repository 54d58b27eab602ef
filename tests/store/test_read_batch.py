"""Contract tests for the batched read methods the IMAP hot paths use: `read_messages`
(many byte ranges in one call) and `select_snapshot` (what SELECT needs in one read)."""

from __future__ import annotations

import pytest

from pillarbox.model import SYSTEM_FLAGS, FlagMode
from pillarbox.store.errors import NotFound
from tests.store.conftest import Env


async def test_read_messages_ranges_in_order(env: Env) -> None:
    """Each (uid, start, length) range comes back in request order; length None reads
    to the end; a repeated or out-of-order UID is fine; an empty request reads nothing."""
    s = env.store
    one = b"Subject: one\r\n\r\n" + b"1" * 500
    two = b"Subject: two\r\n\r\n" + b"2" * 300
    u1 = await env.add(one)
    u2 = await env.add(two)
    got = await s.read_messages(
        env.inbox.id, [(u2, 0, None), (u1, 5, 10), (u1, 0, None), (u2, 17, 3), (u1, 400, None)]
    )
    assert got == [two, one[5:15], one, two[17:20], one[400:]]
    assert await s.read_messages(env.inbox.id, []) == []


async def test_read_messages_missing_is_none(env: Env) -> None:
    """A UID that does not exist (never did, or was expunged) gives None in its place,
    not an error: the other ranges are still read."""
    s = env.store
    u1 = await env.add(b"Subject: a\r\n\r\nkeep\r\n")
    u2 = await env.add(b"Subject: b\r\n\r\ngone\r\n")
    await s.set_flags(env.inbox.id, [u2], frozenset({"\\Deleted"}), FlagMode.ADD)
    assert await s.expunge(env.inbox.id) == [u2]
    got = await s.read_messages(env.inbox.id, [(u1, 0, None), (u2, 0, None), (99, 0, None)])
    assert got == [b"Subject: a\r\n\r\nkeep\r\n", None, None]
    with pytest.raises(NotFound):
        await s.read_message(env.inbox.id, u2)


async def test_read_messages_other_mailbox_not_visible(env: Env) -> None:
    """Ranges are looked up in the given mailbox only."""
    s = env.store
    other = await s.create_mailbox(env.account.id, "Other")
    uid = await env.add(b"Subject: x\r\n\r\nsecret\r\n")
    assert await s.read_messages(other.id, [(uid, 0, None)]) == [None]


async def test_select_snapshot(env: Env) -> None:
    """UIDs ascending, the same counters as `mailbox_status`, and the lowest unseen UID."""
    s = env.store
    u1 = await env.add(flags=frozenset({"\\Seen"}))
    u2 = await env.add(flags=frozenset({"\\Deleted"}))
    u3 = await env.add()
    uids, status, first_unseen = await s.select_snapshot(env.inbox.id)
    assert uids == [u1, u2, u3]
    assert status == await s.mailbox_status(env.inbox.id)
    assert (status.messages, status.unseen, status.deleted) == (3, 2, 1)
    assert first_unseen == u2


async def test_select_snapshot_empty_and_all_seen(env: Env) -> None:
    """An empty mailbox has no UIDs and no first unseen; so does one where all are seen;
    a mailbox that does not exist is NotFound."""
    s = env.store
    uids, status, first_unseen = await s.select_snapshot(env.inbox.id)
    assert (uids, status.messages, first_unseen) == ([], 0, None)
    await env.add(flags=frozenset({"\\Seen"}))
    uids, status, first_unseen = await s.select_snapshot(env.inbox.id)
    assert (len(uids), status.unseen, first_unseen) == (1, 0, None)
    with pytest.raises(NotFound):
        await s.select_snapshot(9999)


async def test_fetch_flag_bits_matches_fetch_flags(env: Env) -> None:
    """`fetch_flag_bits` is `fetch_flags` as raw data: (uid, bits, modseq) ascending with
    bit ``1 << i`` = ``SYSTEM_FLAGS[i]``, keywords by UID only for rows that have any;
    unknown UIDs are skipped and an empty request reads nothing."""
    s = env.store
    u1 = await env.add(flags=frozenset({"\\Seen", "\\Flagged"}))
    u2 = await env.add(flags=frozenset({"$Label1", "\\Draft"}))
    u3 = await env.add()
    wanted = [u3, u1, u2, 999]
    rows, keywords = await s.fetch_flag_bits(env.inbox.id, wanted)
    expected = await s.fetch_flags(env.inbox.id, wanted)
    assert [r[0] for r in rows] == [u1, u2, u3]
    assert set(keywords) == {u2}
    for (uid, bits, modseq), row in zip(rows, expected, strict=True):
        system = {f for i, f in enumerate(SYSTEM_FLAGS) if bits & (1 << i)}
        assert (uid, frozenset(system | set(keywords.get(uid, ()))), modseq) == (
            row.uid,
            row.flags,
            row.modseq,
        )
    assert await s.fetch_flag_bits(env.inbox.id, []) == ([], {})
    assert await s.fetch_flag_bits(env.inbox.id, [999]) == ([], {})


async def test_fetch_with_bodies_pairs_rows_and_files(env: Env) -> None:
    """`fetch_with_bodies` gives the rows of `fetch` (same order, unknown UIDs skipped),
    each with its whole file, read in UID order until `max_bytes` is reached (the first
    file always); later files and files of an empty request come back as None / []."""
    s = env.store
    one = b"Subject: one\r\n\r\n" + b"1" * 500
    two = b"Subject: two\r\n\r\n" + b"2" * 300
    u1 = await env.add(one)
    u2 = await env.add(two)
    wanted = [u2, 999, u1]
    pairs = await s.fetch_with_bodies(env.inbox.id, wanted, 10 * 1024)
    assert [info for info, _ in pairs] == await s.fetch(env.inbox.id, wanted)
    assert [data for _, data in pairs] == [one, two]
    capped = await s.fetch_with_bodies(env.inbox.id, wanted, 1)
    assert [data for _, data in capped] == [one, None]
    assert await s.fetch_with_bodies(env.inbox.id, [], 1024) == []
