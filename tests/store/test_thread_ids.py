"""THREADID in the store contract (RFC 8474 §5.2, `model.objectids`), for every backend.

The store gives each message a thread id when it stores it, from the Message-IDs
`objectids.thread_keys` names, per account; COPY and MOVE keep it; SEARCH THREADID is
a search key like any other.
"""

from __future__ import annotations

from pillarbox.model import SearchAnd, SearchNot, SearchThreadId
from pillarbox.store.api import Store
from tests.store.conftest import Env


async def _thread(store: Store, mailbox_id: int, uid: int) -> int:
    [info] = await store.fetch(mailbox_id, [uid])
    assert info.thread_id is not None
    return info.thread_id


async def test_messages_take_the_thread_of_what_they_name(env: Env) -> None:
    """A reply joins its parent's thread through References or In-Reply-To; a reply
    stored first gives the parent its thread; replies to a message the account never
    got share one; threads are never merged, so a message naming two threads joins its
    parent's (the last reference) and the other keeps its id; others start their own."""
    s, box = env.store, env.inbox.id
    uids = {
        "root": await env.add(b"1", message_id="<root@x>"),
        "r1": await env.add(b"2", message_id=" <r1@x> (c)", in_reply_to="<root@x>"),
        "r2": await env.add(b"3", message_id="<r2@x>", references="<root@x> <r1@x>"),
        "other": await env.add(b"4", message_id="<other@x>"),
        "early": await env.add(b"5", message_id="<early@x>", references="<late@x>"),
        "late": await env.add(b"6", message_id="<late@x>"),
        "s1": await env.add(b"7", references="<lost@x>"),
        "s2": await env.add(b"8", in_reply_to="<lost@x>"),
        "both": await env.add(b"9", references="<root@x> <other@x>"),
        "plain": await env.add(b"10"),
        "plain2": await env.add(b"11"),
    }
    t = {name: await _thread(s, box, uid) for name, uid in uids.items()}
    assert t["r1"] == t["r2"] == t["root"]
    assert t["early"] == t["late"]
    assert t["s1"] == t["s2"]
    assert t["both"] == t["other"]
    distinct = ["root", "other", "early", "s1", "plain", "plain2"]
    assert len({t[n] for n in distinct}) == len(distinct)

    assert await s.search(box, SearchThreadId(t["root"])) == [
        uids["root"],
        uids["r1"],
        uids["r2"],
    ]
    assert await s.search(box, SearchThreadId(None)) == []
    assert await s.search(
        box, SearchAnd((SearchThreadId(t["other"]), SearchNot(SearchThreadId(t["root"]))))
    ) == [uids["other"], uids["both"]]


async def test_copy_and_move_keep_the_thread(env: Env) -> None:
    s, box, acct = env.store, env.inbox.id, env.account.id
    root = await env.add(b"1", message_id="<root@x>")
    reply = await env.add(b"2", references="<root@x>")
    thread = await _thread(s, box, root)
    dst = await s.create_mailbox(acct, "Dest")
    copied = await s.copy(box, [root], dst.id)
    moved = await s.move(box, [reply], dst.id)
    assert await _thread(s, dst.id, copied.dest_uids[0]) == thread
    assert await _thread(s, dst.id, moved.dest_uids[0]) == thread
    later = await env.add(b"3", mailbox_id=dst.id, in_reply_to="<root@x>")
    assert await _thread(s, dst.id, later) == thread
    assert await s.search(dst.id, SearchThreadId(thread)) == [1, 2, 3]


async def test_threads_belong_to_their_account(env: Env) -> None:
    """Another account does not join threads it has no message of, and an account
    created after one was removed does not join the removed account's threads."""
    s = env.store
    await env.add(b"1", message_id="<root@x>")
    seen = {await _thread(s, env.inbox.id, 1)}
    for address in ("bob@example.org", "carol@example.org"):
        account = await s.add_account(address, "$argon2id$dummy")
        inbox = await s.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        uid = await env.add(b"2", mailbox_id=inbox.id, references="<root@x>")
        thread = await _thread(s, inbox.id, uid)
        assert thread not in seen
        seen.add(thread)
        await s.remove_account(address)
