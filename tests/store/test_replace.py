"""The store's REPLACE (RFC 8508 §3.3): append and remove in one transaction.

Pins: the old message goes whatever its flags and is recorded as expunged, the new one
gets the next UID (in another mailbox too), other \\Deleted messages stay; a missing old
message, or a new message over the quota once the old one is counted as freed, changes
nothing; the events say both halves.
"""

from __future__ import annotations

import pytest

from pillarbox.model import MessagesAdded, MessagesExpunged
from pillarbox.store.errors import NotFound, QuotaExceeded
from tests.store.conftest import Env, dummy_meta, write_blob

NEW = b"Subject: draft 2\r\n\r\nsecond version\r\n"


async def test_replace_in_place_and_elsewhere(env: Env) -> None:
    s = env.store
    first = await env.add(flags=frozenset({"\\Deleted"}))
    second = await env.add()
    sub = env.bus.subscribe(env.account.id)
    try:
        blob = await write_blob(s, NEW)
        result = await s.replace(
            env.inbox.id, second, env.inbox.id, blob, dummy_meta(NEW), frozenset({"\\Draft"})
        )
        expunged = await anext(sub)
        added = await anext(sub)
    finally:
        await sub.aclose()
    assert result.uid == second + 1
    assert await s.uids(env.inbox.id) == [first, result.uid]  # \Deleted `first` stays
    assert await s.read_message(env.inbox.id, result.uid) == NEW
    [row] = await s.fetch_flags(env.inbox.id, [result.uid])
    assert row.flags == frozenset({"\\Draft"})
    assert isinstance(expunged, MessagesExpunged) and expunged.uids == (second,)
    assert isinstance(added, MessagesAdded) and [r.uid for r in added.rows] == [result.uid]
    _, gone = await s.changes_since(env.inbox.id, 0)
    assert gone == [second]

    sent = await s.get_special_mailbox(env.account.id, "\\Sent")
    assert sent is not None
    blob = await write_blob(s, NEW)
    moved = await s.replace(env.inbox.id, result.uid, sent.id, blob, dummy_meta(NEW))
    assert await s.uids(env.inbox.id) == [first]
    assert await s.uids(sent.id) == [moved.uid]
    assert moved.uidvalidity == sent.uidvalidity


async def test_replace_changes_nothing_when_it_fails(env: Env) -> None:
    s = env.store
    old = await env.add(b"x" * 40)
    before = await s.mailbox_status(env.inbox.id)
    blob = await write_blob(s, NEW)
    with pytest.raises(NotFound):
        await s.replace(env.inbox.id, old + 7, env.inbox.id, blob, dummy_meta(NEW))
    await s.set_quota("alice@example.org", 50)
    big = b"y" * 51
    blob = await write_blob(s, big)
    with pytest.raises(QuotaExceeded):
        await s.replace(env.inbox.id, old, env.inbox.id, blob, dummy_meta(big))
    assert await s.uids(env.inbox.id) == [old]
    assert await s.mailbox_status(env.inbox.id) == before
    # 45 bytes fit once the 40 of the old message are freed (not 40 + 45 > 50).
    fits = b"z" * 45
    blob = await write_blob(s, fits)
    result = await s.replace(env.inbox.id, old, env.inbox.id, blob, dummy_meta(fits))
    assert await s.uids(env.inbox.id) == [result.uid]
