"""Keyword bounds in the store (issue 16 item 5; RFC 9051 §7.1 LIMIT): per message on
STORE, and distinct per mailbox on APPEND, STORE and COPY; removing is always allowed,
and a refused change changes nothing."""

from __future__ import annotations

import pytest

from pillarbox.model import FlagMode
from pillarbox.rules.flags import MAX_KEYWORDS_PER_MAILBOX, MAX_KEYWORDS_PER_MESSAGE
from pillarbox.store.errors import LimitExceeded
from tests.store.conftest import Env


def keywords(prefix: str, n: int) -> frozenset[str]:
    return frozenset(f"${prefix}{i}" for i in range(n))


async def test_keywords_per_message_are_bounded_on_store(env: Env) -> None:
    s, box = env.store, env.inbox.id
    await env.add()
    half = MAX_KEYWORDS_PER_MESSAGE // 2
    await s.set_flags(box, [1], keywords("a", half), FlagMode.ADD)
    before = await s.fetch_flags(box, [1])
    with pytest.raises(LimitExceeded):
        await s.set_flags(box, [1], keywords("b", half + 1), FlagMode.ADD)
    assert await s.fetch_flags(box, [1]) == before
    await s.set_flags(box, [1], keywords("b", half), FlagMode.ADD)  # exactly the bound
    assert len((await s.fetch_flags(box, [1]))[0].flags) == MAX_KEYWORDS_PER_MESSAGE
    await s.set_flags(box, [1], keywords("a", half), FlagMode.REMOVE)


async def test_distinct_keywords_per_mailbox_are_bounded(env: Env) -> None:
    s, box = env.store, env.inbox.id
    per = MAX_KEYWORDS_PER_MESSAGE
    full = MAX_KEYWORDS_PER_MAILBOX // per
    for n in range(full):
        await env.add(flags=keywords(f"m{n}_", per))
    with pytest.raises(LimitExceeded):
        await env.add(flags=frozenset({"$OneMore"}))
    await env.add(flags=keywords("m0_", 3))  # keywords the mailbox has are fine
    uid = full + 1
    with pytest.raises(LimitExceeded):
        await s.set_flags(box, [uid], frozenset({"$OneMore"}), FlagMode.ADD)
    other = await s.create_mailbox(env.account.id, "Other")
    await env.add(flags=frozenset({"$OnlyHere"}), mailbox_id=other.id)
    with pytest.raises(LimitExceeded):
        await s.copy(other.id, [1], box)
    assert len(await s.uids(box)) == full + 1  # nothing was added by the refused ones
