"""The store contract (`store.api.Store`), run against every backend in `BACKENDS`."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pillarbox.model import (
    DEFAULT_MAILBOXES,
    DkimKey,
    FlagMode,
    FlagRow,
    MessageMeta,
    MessagesAdded,
    PopOnRetrieve,
    PopScope,
    QueuedRecipient,
    QueueOrigin,
    QuotaUsage,
    RecipientOutcome,
    RecipientState,
    SearchText,
)
from pillarbox.store.api import BlobHandle, Store
from pillarbox.store.errors import AlreadyExists, Conflict, NotFound, QuotaExceeded
from tests.store.conftest import Env, blob_gone, dummy_meta, write_blob

# --- domains, accounts, aliases ---------------------------------------------------------


async def test_domains(store: Store) -> None:
    """Domains are stored as given (canonical), unique, listed, and removable only when
    unused."""
    d = await store.add_domain("example.org")
    assert d.name == "example.org"
    assert await store.get_domain("example.org") == d
    with pytest.raises(AlreadyExists):
        await store.add_domain("example.org")
    await store.add_domain("b.example")
    assert [x.name for x in await store.list_domains()] == ["b.example", "example.org"]
    await store.add_account("bob@example.org", "h")
    with pytest.raises(Conflict):
        await store.remove_domain("example.org")
    await store.remove_account("bob@example.org")
    await store.add_alias("@example.org", ["x@elsewhere.test"])
    with pytest.raises(Conflict):
        await store.remove_domain("example.org")
    await store.remove_alias("@example.org")
    await store.remove_domain("example.org")
    assert await store.get_domain("example.org") is None
    with pytest.raises(NotFound):
        await store.remove_domain("example.org")


async def test_accounts(store: Store) -> None:
    """Accounts need their domain, are unique, keep the hash given, and get the default
    mailboxes (subscribed) on creation."""
    with pytest.raises(NotFound):
        await store.add_account("a@nodomain.test", "h")
    await store.add_domain("example.org")
    a = await store.add_account("alice@example.org", "$argon2id$v=19$abc")
    assert a.address == "alice@example.org"
    assert a.password_hash == "$argon2id$v=19$abc"
    with pytest.raises(AlreadyExists):
        await store.add_account("alice@example.org", "h")
    assert await store.get_account("alice@example.org") == a
    assert await store.get_account_by_id(a.id) == a
    assert await store.get_account("nobody@example.org") is None
    await store.set_password_hash("alice@example.org", "new")
    got = await store.get_account("alice@example.org")
    assert got is not None and got.password_hash == "new"
    with pytest.raises(NotFound):
        await store.set_password_hash("nobody@example.org", "x")

    boxes = await store.list_mailboxes(a.id)
    assert {(m.name, m.special_use) for m in boxes} == set(DEFAULT_MAILBOXES)
    assert boxes[0].name == "INBOX"
    assert all(m.subscribed for m in boxes)
    sent = await store.get_special_mailbox(a.id, "\\Sent")
    assert sent is not None and sent.name == "Sent"

    await store.add_domain("other.test")
    b = await store.add_account("bob@other.test", "h")
    assert [x.address for x in await store.list_accounts()] == [
        "alice@example.org",
        "bob@other.test",
    ]
    assert await store.list_accounts("other.test") == [b]


async def test_remove_account_collects_blobs(env: Env) -> None:
    """Removing an account removes its mailboxes, messages and (after commit) blobs."""
    uid = await env.add(b"to be removed")
    info = (await env.store.fetch(env.inbox.id, [uid]))[0]
    assert await env.store.read_blob(info.blob_id) == b"to be removed"
    await env.store.remove_account("alice@example.org")
    assert await env.store.get_account("alice@example.org") is None
    assert await env.store.list_mailboxes(env.account.id) == []
    with pytest.raises(NotFound):
        await env.store.read_blob(info.blob_id)
    with pytest.raises(NotFound):
        await env.store.remove_account("alice@example.org")


async def test_pop_policy_and_hiding(env: Env) -> None:
    """FROM_NOW records INBOX's UIDNEXT; hidden messages are a POP3-only mark."""
    await env.add()
    await env.add()
    acct = await env.store.set_pop_policy(
        "alice@example.org", PopOnRetrieve.KEEP, PopScope.FROM_NOW
    )
    assert acct.pop_min_uid == 3
    assert acct.pop_on_retrieve is PopOnRetrieve.KEEP and acct.pop_scope is PopScope.FROM_NOW
    acct = await env.store.set_pop_policy("alice@example.org", PopOnRetrieve.DELETE, PopScope.ALL)
    assert acct.pop_min_uid == 0
    before = (await env.store.mailbox_status(env.inbox.id)).highestmodseq
    await env.store.pop_hide(env.inbox.id, [1])
    assert await env.store.pop_hidden(env.inbox.id) == {1}
    # invisible to IMAP: no MODSEQ change, flags unchanged
    assert (await env.store.mailbox_status(env.inbox.id)).highestmodseq == before
    assert (await env.store.fetch_flags(env.inbox.id, [1]))[0].flags == frozenset()


async def test_aliases(store: Store) -> None:
    """Aliases map a source (or "@domain" catch-all) to ordered targets; adding adds."""
    await store.add_domain("example.org")
    with pytest.raises(NotFound):
        await store.add_alias("x@nodomain.test", ["a@b.c"])
    a = await store.add_alias("sales@example.org", ["a@example.org", "b@example.org"])
    assert a.source == "sales@example.org"
    assert a.targets == ("a@example.org", "b@example.org")
    a = await store.add_alias("sales@example.org", ["c@ext.test", "a@example.org"])
    assert a.targets == ("a@example.org", "b@example.org", "c@ext.test")
    catch_all = await store.add_alias("@example.org", ["postmaster@example.org"])
    assert catch_all.source == "@example.org"
    assert await store.get_alias("sales@example.org") == a
    assert await store.list_aliases() == [catch_all, a]
    await store.remove_alias("sales@example.org")
    assert await store.get_alias("sales@example.org") is None
    with pytest.raises(NotFound):
        await store.remove_alias("sales@example.org")


# --- mailboxes --------------------------------------------------------------------------


async def test_mailbox_names_and_lifecycle(env: Env) -> None:
    """Names match exactly (canonical names come from above); create gives a new
    UIDVALIDITY; delete refuses INBOX."""
    s, acct = env.store, env.account.id
    assert (await s.get_mailbox(acct, "INBOX")) == env.inbox
    assert await s.get_mailbox(acct, "sent") is None
    with pytest.raises(AlreadyExists):
        await s.create_mailbox(acct, "INBOX")
    with pytest.raises(AlreadyExists):
        await s.create_mailbox(acct, "Sent")
    with pytest.raises(NotFound):
        await s.create_mailbox(999, "X")
    box = await s.create_mailbox(acct, "Lists/python", "\\Flagged")
    assert box.name == "Lists/python"
    assert box.special_use == "\\Flagged" and box.uidnext == 1
    assert await s.get_mailbox_by_id(box.id) == box
    with pytest.raises(Conflict):
        await s.delete_mailbox(acct, "INBOX")
    with pytest.raises(NotFound):
        await s.delete_mailbox(acct, "nope")
    seen_validity = {m.uidvalidity for m in await s.list_mailboxes(acct)}
    await env.add(mailbox_id=box.id)
    await s.delete_mailbox(acct, "Lists/python")
    assert await s.get_mailbox(acct, "Lists/python") is None
    again = await s.create_mailbox(acct, "Lists/python")
    assert again.uidvalidity not in seen_validity
    assert again.uidvalidity > box.uidvalidity
    assert await s.uids(again.id) == []


async def test_rename_with_children(env: Env) -> None:
    """RFC 9051 §6.3.6: children move too; each renamed mailbox gets a UIDVALIDITY no
    name had before; messages and UIDs stay; subscriptions follow."""
    s, acct = env.store, env.account.id
    work = await s.create_mailbox(acct, "Work")
    child = await s.create_mailbox(acct, "Work/2024")
    other = await s.create_mailbox(acct, "Workshop")
    await s.set_subscribed(acct, "Work/2024", True)
    uid = await env.add(b"keep me", mailbox_id=child.id)
    with pytest.raises(AlreadyExists):
        await s.rename_mailbox(acct, "Work", "Workshop")
    with pytest.raises(Conflict):
        await s.rename_mailbox(acct, "Work", "Work/inner")
    with pytest.raises(NotFound):
        await s.rename_mailbox(acct, "Nope", "X")
    await s.rename_mailbox(acct, "Work", "Job")
    names = {m.name for m in await s.list_mailboxes(acct)}
    assert {"Job", "Job/2024", "Workshop"} <= names
    assert "Work" not in names and "Work/2024" not in names
    job_child = await s.get_mailbox(acct, "Job/2024")
    assert job_child is not None and job_child.id == child.id
    assert job_child.uidvalidity > child.uidvalidity
    assert job_child.subscribed
    assert "Job/2024" in await s.list_subscriptions(acct)
    assert await s.uids(child.id) == [uid]
    assert await s.read_message(child.id, uid) == b"keep me"
    # rename back: never the UIDVALIDITY the name had before
    await s.rename_mailbox(acct, "Job", "Work")
    back = await s.get_mailbox(acct, "Work")
    assert back is not None
    assert back.uidvalidity not in {work.uidvalidity, job_child.uidvalidity}
    assert (await s.get_mailbox(acct, "Workshop")) == other


async def test_rename_inbox(env: Env) -> None:
    """Renaming INBOX moves its messages to a new mailbox; INBOX stays, empty."""
    s, acct = env.store, env.account.id
    u1 = await env.add(b"one", flags=frozenset({"\\Seen", "$Work"}))
    await env.add(b"two")
    await s.create_mailbox(acct, "INBOX/child")
    await s.rename_mailbox(acct, "INBOX", "Old mail")
    old = await s.get_mailbox(acct, "Old mail")
    assert old is not None
    assert await s.uids(env.inbox.id) == []
    assert await s.uids(old.id) == [1, 2]
    assert await s.read_message(old.id, 1) == b"one"
    assert (await s.fetch_flags(old.id, [1]))[0].flags == {"\\Seen", "$Work"}
    assert await s.get_mailbox(acct, "INBOX/child") is not None  # not renamed
    # INBOX keeps its UIDVALIDITY and never reuses the UIDs
    _, gone = await s.changes_since(env.inbox.id, 0)
    assert gone == [u1, 2]
    assert await env.add(b"three") == 3


async def test_subscriptions(env: Env) -> None:
    """Subscriptions are by name and may name mailboxes that do not exist."""
    s, acct = env.store, env.account.id
    await s.set_subscribed(acct, "Ghost", True)
    await s.set_subscribed(acct, "Junk", False)
    subs = await s.list_subscriptions(acct)
    assert "Ghost" in subs and "Junk" not in subs and subs[0] == "INBOX"
    junk = await s.get_mailbox(acct, "Junk")
    assert junk is not None and not junk.subscribed
    await s.set_subscribed(acct, "Ghost", False)
    assert "Ghost" not in await s.list_subscriptions(acct)


async def test_status_and_quota(env: Env) -> None:
    """STATUS counts and quota usage follow appends and expunges."""
    s = env.store
    await env.add(b"a" * 10, flags=frozenset({"\\Seen"}))
    await env.add(b"b" * 20, flags=frozenset({"\\Deleted"}))
    await env.add(b"c" * 30)
    st = await s.mailbox_status(env.inbox.id)
    assert (st.messages, st.unseen, st.deleted, st.size, st.uidnext) == (3, 2, 1, 60, 4)
    assert st.deleted_size == 20  # RFC 9208 §4.2 DELETED-STORAGE
    assert st.uidvalidity == env.inbox.uidvalidity
    assert await s.quota_usage(env.account.id) == 60
    await s.expunge(env.inbox.id)
    assert await s.quota_usage(env.account.id) == 40
    with pytest.raises(NotFound):
        await s.mailbox_status(9999)


async def test_recent_watermark_is_claimed_once(env: Env) -> None:
    """RFC 3501 §2.3.2: the recent watermark moves up only; of claims at once each UID
    goes to one claimer; a read (EXAMINE) moves nothing; COUNT counts UIDs above it."""
    s = env.store
    for data in (b"a", b"b", b"c"):
        await env.add(data)
    assert await s.claim_recent(env.inbox.id, None) == 0
    assert await s.count_recent(env.inbox.id) == 3
    firsts = await asyncio.gather(*(s.claim_recent(env.inbox.id, 3) for _ in range(5)))
    assert sorted(firsts) == [0, 3, 3, 3, 3]  # one claimer got UIDs 1..3
    assert await s.count_recent(env.inbox.id) == 0
    assert await s.claim_recent(env.inbox.id, 2) == 3  # never moves down
    await env.add(b"d")
    assert await s.count_recent(env.inbox.id) == 1
    assert await s.claim_recent(env.inbox.id, None) == 3
    with pytest.raises(NotFound):
        await s.claim_recent(9999, None)


async def test_quota_exceeded(env: Env) -> None:
    """An append over the account's quota fails alone and changes nothing."""
    s = env.store
    account = await s.set_quota("alice@example.org", 50)
    assert account.quota_bytes == 50
    with pytest.raises(NotFound):
        await s.set_quota("nobody@example.org", 50)
    await env.add(b"x" * 40)
    with pytest.raises(QuotaExceeded):
        await env.add(b"y" * 20)
    assert await s.uids(env.inbox.id) == [1]
    trash = await s.get_special_mailbox(env.account.id, "\\Trash")
    assert trash is not None
    with pytest.raises(QuotaExceeded):
        await s.copy(env.inbox.id, [1], trash.id)
    # a move stays inside the account: allowed at the limit
    moved = await s.move(env.inbox.id, [1], trash.id)
    assert moved.dest_uids == (1,)
    assert await s.quota_usage(env.account.id) == 40


async def test_message_limit(env: Env) -> None:
    """RFC 9208 §5.2 MESSAGE: the account holds at most its limit of messages, counted
    over every mailbox with \\Deleted ones until expunged; APPEND, delivery and COPY over
    it fail alone and change nothing, a MOVE inside the account is never refused, and
    each limit is set alone (None keeps the other)."""
    s = env.store
    account = await s.set_quota("alice@example.org", None, 2)
    assert (account.quota_bytes, account.quota_messages) == (0, 2)
    assert await s.quota(env.account.id) == QuotaUsage(0, 0, 0, 2)
    trash = await s.get_special_mailbox(env.account.id, "\\Trash")
    assert trash is not None
    await env.add(b"a" * 10)
    await env.add(b"b" * 20, flags=frozenset({"\\Deleted"}), mailbox_id=trash.id)
    assert await s.quota(env.account.id) == QuotaUsage(30, 0, 2, 2)
    with pytest.raises(QuotaExceeded):
        await env.add(b"c")
    blob = await write_blob(s, b"c")
    with pytest.raises(QuotaExceeded):
        await s.deliver([_Target(env.inbox.id, blob, dummy_meta(b"c"))])
    with pytest.raises(QuotaExceeded):
        await s.copy(env.inbox.id, [1], trash.id)
    assert await s.uids(env.inbox.id) == [1] and await s.uids(trash.id) == [1]
    moved = await s.move(env.inbox.id, [1], trash.id)  # at the limit: allowed
    assert moved.dest_uids == (2,)
    assert await s.quota(env.account.id) == QuotaUsage(30, 0, 2, 2)
    await s.expunge(trash.id)  # the \\Deleted one goes: room for one more
    assert await s.quota(env.account.id) == QuotaUsage(10, 0, 1, 2)
    await env.add(b"d")
    # the byte quota is set alone and keeps the message limit
    account = await s.set_quota("alice@example.org", 100)
    assert (account.quota_bytes, account.quota_messages) == (100, 2)
    account = await s.set_quota("alice@example.org", None, 0)  # 0: no limit
    assert (account.quota_bytes, account.quota_messages) == (100, 0)
    await env.add(b"e")
    assert await s.quota(env.account.id) == QuotaUsage(12, 100, 3, 0)
    with pytest.raises(NotFound):
        await s.set_quota("nobody@example.org", None, 5)
    with pytest.raises(NotFound):
        await s.quota(9999)


async def test_message_count_of_another_account(env: Env) -> None:
    """A MOVE between accounts counts for the destination's limit and frees a place in
    the source's; removing a mailbox uncounts its messages."""
    s = env.store
    bob = await s.add_account("bob@example.org", "h")
    bob_inbox = await s.get_mailbox(bob.id, "INBOX")
    assert bob_inbox is not None
    await s.set_quota("bob@example.org", None, 1)
    await env.add(b"one")
    await env.add(b"two")
    with pytest.raises(QuotaExceeded):
        await s.move(env.inbox.id, [1, 2], bob_inbox.id)
    await s.move(env.inbox.id, [1], bob_inbox.id)
    assert (await s.quota(bob.id)).messages_used == 1
    assert (await s.quota(env.account.id)).messages_used == 1
    box = await s.create_mailbox(env.account.id, "Old")
    await env.add(b"three", mailbox_id=box.id)
    assert (await s.quota(env.account.id)).messages_used == 2
    await s.delete_mailbox(env.account.id, "Old")
    assert await s.quota(env.account.id) == QuotaUsage(3, 0, 1, 0)


# --- messages ---------------------------------------------------------------------------


async def test_append_fetch_read(env: Env) -> None:
    """Append returns UID/MODSEQ/UIDVALIDITY; FETCH returns the stored metadata as given,
    the file reads back byte for byte and by range."""
    s = env.store
    data = b"Subject: x\r\n\r\n" + bytes(range(256)) * 100
    blob = await write_blob(s, data)
    assert blob.size == len(data)
    when = datetime(2023, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    meta = dummy_meta(data, subject="x")
    res = await s.append(env.inbox.id, blob, meta, frozenset({"\\seen", "$Label1"}), when)
    assert res.uid == 1 and res.uidvalidity == env.inbox.uidvalidity
    assert res.modseq > env.inbox.highestmodseq
    [info] = await s.fetch(env.inbox.id, [1, 2, 3])
    assert info.flags == {"\\Seen", "$Label1"}
    assert info.internaldate == when and info.internaldate.utcoffset() == timedelta(hours=-5)
    assert (info.envelope, info.bodystructure, info.body, info.parts, info.preview) == (
        meta.envelope,
        meta.bodystructure,
        meta.body,
        meta.parts,
        meta.preview,
    )
    assert info.size == len(data) and info.modseq == res.modseq
    assert await s.read_message(env.inbox.id, 1) == data
    assert await s.read_message(env.inbox.id, 1, 5, 10) == data[5:15]
    assert await s.read_blob(info.blob_id) == data
    assert await s.read_blob(info.blob_id, 14, 3) == data[14:17]
    with pytest.raises(NotFound):
        await s.read_message(env.inbox.id, 2)
    with pytest.raises(NotFound):
        await s.append(9999, await write_blob(s, b"z"), dummy_meta(b"z"))
    assert await s.fetch(env.inbox.id, []) == []


async def test_blob_abort(store: Store) -> None:
    """Aborting is idempotent; aborting after finish deletes the unused blob."""
    w = store.new_blob()
    await w.write(b"partial")
    await w.abort()
    await w.abort()
    w2 = store.new_blob()
    await w2.write(b"complete")
    handle = await w2.finish()
    assert handle.size == 8
    assert await store.read_blob(handle.blob_id) == b"complete"
    await w2.abort()
    with pytest.raises(NotFound):
        await store.read_blob(handle.blob_id)


async def test_blob_streaming(store: Store) -> None:
    """A finished blob reads back before any row refers to it: streamed from any
    offset in pieces of the size asked, with its length; then it can be deleted, and
    a deleted or unknown blob is NotFound."""
    data = bytes(range(256)) * 2000  # several read chunks
    blob = await write_blob(store, data)
    reader = await store.open_blob(blob.blob_id)
    assert reader.size == len(data)
    got = bytearray()
    while piece := await reader.read(100_003):
        assert len(piece) <= 100_003
        got += piece
    await reader.close()
    await reader.close()
    assert bytes(got) == data
    tail = await store.open_blob(blob.blob_id, len(data) - 10)
    assert tail.size == 10 and await tail.read() == data[-10:] and await tail.read() == b""
    await tail.close()
    await store.delete_blob(blob.blob_id)
    with pytest.raises(NotFound):
        await store.open_blob(blob.blob_id)
    with pytest.raises(NotFound):
        await store.read_blob(blob.blob_id)
    await store.delete_blob(blob.blob_id)  # unknown: no error


async def test_open_blob_survives_expunge(env: Env) -> None:
    """A blob opened before its last message is expunged reads to its end (POP3 RETR
    opens before it answers +OK)."""
    data = b"Subject: x\r\n\r\n" + b"y" * 600_000
    uid = await env.add(data)
    [info] = await env.store.fetch(env.inbox.id, [uid])
    reader = await env.store.open_blob(info.blob_id)
    await env.store.set_flags(env.inbox.id, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    await env.store.expunge(env.inbox.id)
    got = bytearray()
    while piece := await reader.read(65536):
        got += piece
    await reader.close()
    assert bytes(got) == data
    assert await blob_gone(env.store, info.blob_id)


async def test_delete_blob_keeps_referenced(env: Env) -> None:
    """delete_blob leaves a blob alone while a message refers to it."""
    uid = await env.add(b"kept")
    [info] = await env.store.fetch(env.inbox.id, [uid])
    await env.store.delete_blob(info.blob_id)
    assert await env.store.read_blob(info.blob_id) == b"kept"
    assert await env.store.read_message(env.inbox.id, uid) == b"kept"


async def test_deliver_all_or_nothing(env: Env) -> None:
    """deliver() appends to several mailboxes atomically, sharing one blob."""

    class D:
        def __init__(self, mailbox_id: int, blob: object, meta: object) -> None:
            self.mailbox_id = mailbox_id
            self.blob = blob
            self.meta = meta
            self.flags: frozenset[str] = frozenset()
            self.internaldate = datetime.now(UTC)

    s = env.store
    await s.add_account("bob@example.org", "h")
    bob = await s.get_account("bob@example.org")
    assert bob is not None
    bob_inbox = await s.get_mailbox(bob.id, "INBOX")
    assert bob_inbox is not None
    data = b"to both"
    blob = await write_blob(s, data)
    meta = dummy_meta(data)
    results = await s.deliver([D(env.inbox.id, blob, meta), D(bob_inbox.id, blob, meta)])  # type: ignore[list-item]
    assert [r.uid for r in results] == [1, 1]
    assert await s.read_message(bob_inbox.id, 1) == data
    # one target fails: nothing is delivered
    with pytest.raises(NotFound):
        await s.deliver([D(env.inbox.id, blob, meta), D(9999, blob, meta)])  # type: ignore[list-item]
    assert await s.uids(env.inbox.id) == [1]
    # the shared file survives until its last row goes
    [info] = await s.fetch(env.inbox.id, [1])
    await s.set_flags(env.inbox.id, [1], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(env.inbox.id)
    assert await s.read_blob(info.blob_id) == data
    await s.set_flags(bob_inbox.id, [1], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(bob_inbox.id)
    assert await blob_gone(s, info.blob_id)


async def test_set_flags_modes_and_modseq(env: Env) -> None:
    """ADD/REMOVE/REPLACE of system flags and keywords; only changed rows get a new
    MODSEQ; each change has a MODSEQ above every earlier one (RFC 7162 §3.1)."""
    s, box = env.store, env.inbox.id
    for _ in range(4):
        await env.add()
    r = await s.set_flags(box, [1, 2], frozenset({"\\Seen", "$A"}), FlagMode.ADD)
    assert [row.uid for row in r.changed] == [1, 2]
    m1 = r.changed[0].modseq
    assert all(row.flags == {"\\Seen", "$A"} and row.modseq == m1 for row in r.changed)
    # nothing changes: no new MODSEQ
    r = await s.set_flags(box, [1, 2], frozenset({"\\SEEN", "$a"}), FlagMode.ADD)
    assert r.changed == ()
    assert (await s.mailbox_status(box)).highestmodseq == m1
    r = await s.set_flags(box, [1, 2, 3], frozenset({"$a"}), FlagMode.REMOVE)
    assert [row.uid for row in r.changed] == [1, 2]
    m2 = r.changed[0].modseq
    assert m2 > m1
    r = await s.set_flags(box, [1, 3, 4, 99], frozenset({"\\Flagged", "$New"}), FlagMode.REPLACE)
    assert [row.uid for row in r.changed] == [1, 3, 4]
    assert r.changed[0].flags == {"\\Flagged", "$New"} and r.changed[0].modseq > m2
    rows = await s.fetch_flags(box, [1, 2, 3, 4])
    assert [row.flags for row in rows] == [
        {"\\Flagged", "$New"},
        {"\\Seen"},
        {"\\Flagged", "$New"},
        {"\\Flagged", "$New"},
    ]
    # keyword spelling: the mailbox keeps the first spelling
    await s.set_flags(box, [2], frozenset({"$NEW"}), FlagMode.ADD)
    assert (await s.fetch_flags(box, [2]))[0].flags == {"\\Seen", "$New"}
    # \Recent cannot be stored (RFC 9051 removed it)
    r = await s.set_flags(box, [2], frozenset({"\\Recent"}), FlagMode.ADD)
    assert r.changed == ()


async def test_unchanged_since(env: Env) -> None:
    """RFC 7162 §3.1.3: rows modified after UNCHANGEDSINCE are refused and reported."""
    s, box = env.store, env.inbox.id
    await env.add()
    await env.add()
    r = await s.set_flags(box, [2], frozenset({"\\Seen"}), FlagMode.ADD)
    mark = r.changed[0].modseq - 1
    r = await s.set_flags(box, [1, 2], frozenset({"\\Flagged"}), FlagMode.ADD, unchanged_since=mark)
    assert r.modified == (2,)
    assert [row.uid for row in r.changed] == [1]


async def test_fetch_flags_large_range(env: Env) -> None:
    """fetch_flags over many UIDs, including gaps and unknown UIDs, in order."""
    s, box = env.store, env.inbox.id
    blob = await write_blob(s, b"shared")
    meta = dummy_meta(b"shared")
    await asyncio.gather(*(s.append(box, blob, meta) for _ in range(300)))
    await s.set_flags(box, list(range(1, 301, 2)), frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(box, list(range(1, 101)))
    rows = await s.fetch_flags(box, list(range(1, 100_000)))
    assert [r.uid for r in rows] == [u for u in range(1, 301) if u > 100 or u % 2 == 0]
    scattered = list(range(300, 0, -7))
    rows = await s.fetch_flags(box, scattered)
    assert [r.uid for r in rows] == sorted(u for u in scattered if u > 100 or u % 2 == 0)


async def test_fetch_flag_text(env: Env) -> None:
    """fetch_flag_text: the same flags as fetch_flags, one line per existing message in
    UID order, flag names in their fixed order, for a UID list and a UID range alike,
    with MODSEQ and CHANGEDSINCE, and the keywords that occur."""
    s, box = env.store, env.inbox.id
    for _ in range(12):
        await env.add()
    await s.set_flags(box, [2, 3], frozenset({"\\Seen", "\\Flagged", "\\Answered"}), FlagMode.ADD)
    await s.set_flags(box, [4], frozenset({"\\Draft", "zeta", "$Alpha", "Beta"}), FlagMode.ADD)
    await s.set_flags(box, [5, 6], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(box, [5])
    last = await s.set_flags(box, [8], frozenset({"$Alpha"}), FlagMode.ADD)
    mark = last.changed[0].modseq

    def expected(uids: list[int], rows: list[FlagRow], *, modseq: bool = False) -> str:
        lines = []
        for row in rows:
            system = sorted((f for f in row.flags if f.startswith("\\")), key=str.lower)
            keywords = sorted((f for f in row.flags if not f.startswith("\\")), key=str.lower)
            names = " ".join([*system, *keywords])
            lines.append(f"{row.uid}\t{row.modseq}\t{names}" if modseq else f"{row.uid}\t{names}")
        return "\n".join(lines)

    every = list(range(1, 20))
    rows = await s.fetch_flags(box, every)
    assert len(rows) == 11
    for wanted in (every, range(1, 20)):
        text = await s.fetch_flag_text(box, wanted)
        assert (text.count, text.text) == (11, expected(every, rows))
        assert text.keywords == {"zeta", "$Alpha", "Beta"}
    assert rows[3].uid == 4
    assert "4\t\\Draft $Alpha Beta zeta" in text.text.split("\n")
    assert "2\t\\Answered \\Flagged \\Seen" in text.text.split("\n")
    some = [3, 5, 7, 8, 9, 30]
    text = await s.fetch_flag_text(box, some, modseq=True)
    want = [r for r in rows if r.uid in some]
    assert (text.count, text.text) == (4, expected(some, want, modseq=True))
    assert text.keywords == {"$Alpha"}
    text = await s.fetch_flag_text(box, range(1, 13), changed_since=mark - 1, modseq=True)
    assert (text.count, text.text) == (1, f"8\t{mark}\t$Alpha")
    assert text.keywords == {"$Alpha"}
    text = await s.fetch_flag_text(box, range(9, 13), changed_since=mark)
    assert (text.count, text.text, text.keywords) == (0, "", frozenset())
    empty = await s.fetch_flag_text(box, [])
    assert (empty.count, empty.text) == (0, "")
    assert (await s.fetch_flag_text(box, range(5, 5))).count == 0
    assert (await s.fetch_flag_text(box, [5])).count == 0


async def test_expunge(env: Env) -> None:
    """Expunge removes \\Deleted messages (only among the given UIDs if any), records
    them with one MODSEQ for QRESYNC, and UIDs are never reused."""
    s, box = env.store, env.inbox.id
    for _ in range(5):
        await env.add()
    await s.set_flags(box, [1, 2, 4], frozenset({"\\Deleted"}), FlagMode.ADD)
    mark = (await s.mailbox_status(box)).highestmodseq
    assert await s.expunge(box, [2, 3, 4]) == [2, 4]
    assert await s.uids(box) == [1, 3, 5]
    assert await s.expunge(box) == [1]
    assert await s.expunge(box) == []
    changed, gone = await s.changes_since(box, mark)
    assert gone == [1, 2, 4]
    assert changed == []
    assert await env.add() == 6


async def test_changes_since(env: Env) -> None:
    """changes_since returns rows with a newer MODSEQ and UIDs expunged after it."""
    s, box = env.store, env.inbox.id
    for _ in range(3):
        await env.add()
    mark = (await s.mailbox_status(box)).highestmodseq
    await s.set_flags(box, [2], frozenset({"\\Seen", "kw"}), FlagMode.ADD)
    await s.set_flags(box, [3], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(box)
    new = await env.add()
    changed, gone = await s.changes_since(box, mark)
    assert [(r.uid, r.flags) for r in changed] == [(2, {"\\Seen", "kw"}), (new, frozenset())]
    assert gone == [3]
    top = (await s.mailbox_status(box)).highestmodseq
    assert await s.changes_since(box, top) == ([], [])


async def test_copy_and_move(env: Env) -> None:
    """COPY and MOVE return the UID map (RFC 4315) in source order; MOVE expunges the
    source (RFC 6851); flags and keywords travel; the blob is shared, not copied."""
    s, box, acct = env.store, env.inbox.id, env.account.id
    for i in range(5):
        await env.add(f"m{i}".encode(), flags=frozenset({"$K"} if i == 2 else set()))
    dst = await s.create_mailbox(acct, "Dest")
    await env.add(b"already", mailbox_id=dst.id)
    res = await s.copy(box, [4, 2, 99], dst.id)
    assert (res.source_uids, res.dest_uids, res.uidvalidity) == ((2, 4), (2, 3), dst.uidvalidity)
    assert await s.read_message(dst.id, 2) == b"m1"
    assert (await s.fetch_flags(dst.id, [2]))[0].flags == frozenset()
    src_info = (await s.fetch(box, [3]))[0]
    res = await s.move(box, [1, 3], dst.id)
    assert (res.source_uids, res.dest_uids) == ((1, 3), (4, 5))
    assert await s.uids(box) == [2, 4, 5]
    assert await s.uids(dst.id) == [1, 2, 3, 4, 5]
    moved = (await s.fetch(dst.id, [5]))[0]
    assert moved.flags == {"$K"} and moved.blob_id == src_info.blob_id
    assert moved.internaldate == src_info.internaldate
    _, gone = await s.changes_since(box, 0)
    assert gone == [1, 3]
    empty = await s.copy(box, [77], dst.id)
    assert empty.source_uids == () and empty.dest_uids == ()
    with pytest.raises(NotFound):
        await s.copy(box, [2], 9999)


async def test_queue(store: Store) -> None:
    """enqueue stores the envelope, DSN parameters, origin and a reference to the blob;
    the entry is due now, unclaimed, every recipient queued with its position; list and
    get return the same entry, get None for an unknown id."""
    before = datetime.now(UTC)
    blob = await write_blob(store, b"outbound")
    rcpts = [
        QueuedRecipient("a@x.test", notify="SUCCESS,DELAY", orcpt="rfc822;a@x.test"),
        QueuedRecipient("b@y.test"),
    ]
    qid = await store.enqueue(
        "me@example.org",
        rcpts,
        blob,
        dsn_envid="ENV1",
        dsn_ret="HDRS",
        origin=QueueOrigin.SUBMISSION,
    )
    [q] = await store.list_queue()
    assert q.id == qid and q.sender == "me@example.org"
    assert q.recipients == tuple(dataclasses.replace(r, position=i) for i, r in enumerate(rcpts))
    assert q.pending == q.recipients
    assert (q.blob_id, q.dsn_envid, q.dsn_ret, q.attempts) == (blob.blob_id, "ENV1", "HDRS", 0)
    assert (q.origin, q.warned, q.size, q.last_error) == (QueueOrigin.SUBMISSION, False, 8, "")
    assert q.claimed_until is None
    assert q.created_at.tzinfo is not None and before <= q.created_at <= datetime.now(UTC)
    assert q.next_attempt <= datetime.now(UTC)
    assert await store.get_queued(qid) == q
    assert await store.get_queued(qid + 1000) is None
    assert await store.read_blob(q.blob_id) == b"outbound"
    other = await store.enqueue("", [QueuedRecipient("c@z.test")], await write_blob(store, b"b"))
    assert [e.id for e in await store.list_queue()] == [qid, other]
    bounce = await store.get_queued(other)
    assert bounce is not None and bounce.sender == "" and bounce.origin is QueueOrigin.FORWARD
    with pytest.raises(Conflict):
        await store.enqueue("me@example.org", [], await write_blob(store, b"c"))


async def test_queue_recipient_outcomes(store: Store) -> None:
    """record_outcomes sets state, status, diagnostic and remote MTA per position and
    leaves the others alone; `pending` then holds only queued recipients; an unknown
    position or entry changes nothing (NotFound)."""
    blob = await write_blob(store, b"m")
    addresses = ["a@x.test", "b@y.test", "c@z.test"]
    qid = await store.enqueue("me@example.org", [QueuedRecipient(a) for a in addresses], blob)
    await store.record_outcomes(
        qid,
        [
            RecipientOutcome(0, RecipientState.DELIVERED, "2.0.0", "250 ok", "mx.x.test"),
            RecipientOutcome(2, RecipientState.FAILED, "5.1.1", "550 no such user"),
        ],
    )
    q = await store.get_queued(qid)
    assert q is not None
    assert [(r.position, r.state, r.status, r.diagnostic, r.remote_mta) for r in q.recipients] == [
        (0, RecipientState.DELIVERED, "2.0.0", "250 ok", "mx.x.test"),
        (1, RecipientState.QUEUED, "", "", ""),
        (2, RecipientState.FAILED, "5.1.1", "550 no such user", ""),
    ]
    assert [r.address for r in q.pending] == ["b@y.test"]
    await store.record_outcomes(
        qid, [RecipientOutcome(1, RecipientState.RELAYED, "2.0.0", "250 queued", "mx.y.test")]
    )
    with pytest.raises(NotFound):
        await store.record_outcomes(
            qid,
            [
                RecipientOutcome(0, RecipientState.FAILED, "5.0.0", "x"),
                RecipientOutcome(7, RecipientState.FAILED, "5.0.0", "x"),
            ],
        )
    with pytest.raises(NotFound):
        await store.record_outcomes(qid + 1000, [])
    after = await store.get_queued(qid)
    assert after is not None and after.pending == ()
    assert [r.state for r in after.recipients] == [
        RecipientState.DELIVERED,
        RecipientState.RELAYED,
        RecipientState.FAILED,
    ]


async def test_claim_queue_leases(store: Store) -> None:
    """A claim takes due, free entries, oldest due first, up to `limit`, and holds each
    for the lease: no claim returns it again until the lease runs out or reschedule
    releases it."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    ids = []
    for i in range(3):
        blob = await write_blob(store, f"m{i}".encode())
        ids.append(await store.enqueue("s@example.org", [QueuedRecipient(f"r{i}@x.test")], blob))
    # entry 0 is due last; entry 2 not before tomorrow
    await store.reschedule(ids[0], now - timedelta(seconds=10), "451 later")
    await store.reschedule(ids[1], now - timedelta(seconds=20), "451 later")
    await store.reschedule(ids[2], now + timedelta(days=1), "")

    first = await store.claim_queue(now, 1, 60)
    assert [q.id for q in first] == [ids[1]]
    assert first[0].claimed_until == now + timedelta(seconds=60)
    assert first[0].size == 2 and first[0].recipients[0].address == "r1@x.test"
    assert [q.id for q in await store.claim_queue(now, 10, 60)] == [ids[0]]
    assert await store.claim_queue(now, 10, 60) == []
    held = await store.get_queued(ids[1])
    assert held is not None and held.claimed_until == now + timedelta(seconds=60)
    # the lease runs out: free again (a worker died)
    later = now + timedelta(seconds=61)
    assert [q.id for q in await store.claim_queue(later, 10, 60)] == [ids[1], ids[0]]
    # reschedule releases the claim, counts the attempt, and sets the next one
    await store.reschedule(ids[1], later, "421 busy", warned=True)
    q = await store.get_queued(ids[1])
    assert q is not None and q.claimed_until is None
    assert (q.attempts, q.last_error, q.warned, q.next_attempt) == (2, "421 busy", True, later)
    await store.reschedule(ids[1], later, "421 busy")
    q = await store.get_queued(ids[1])
    assert q is not None and q.warned and q.attempts == 3  # warned kept when not given
    assert [q.id for q in await store.claim_queue(later, 10, 60)] == [ids[1]]
    # not yet due, though free
    for qid in (ids[1], ids[0]):
        await store.reschedule(qid, later + timedelta(hours=1), "x")
    assert await store.claim_queue(later + timedelta(seconds=120), 10, 60) == []
    due = await store.claim_queue(later + timedelta(hours=2), 10, 60)
    assert [q.id for q in due] == [ids[0], ids[1]]  # same time: in queue order
    with pytest.raises(NotFound):
        await store.reschedule(ids[2] + 1000, later, "x")


async def test_concurrent_claims_never_share_an_entry(store: Store) -> None:
    """Many claims at once: every due entry is returned by exactly one of them."""
    ids = set()
    for i in range(20):
        blob = await write_blob(store, f"m{i}".encode())
        ids.add(await store.enqueue("s@example.org", [QueuedRecipient(f"r{i}@x.test")], blob))
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with asyncio.timeout(30):
        claims = await asyncio.gather(*(store.claim_queue(now, 3, 300) for _ in range(10)))
    taken = [q.id for claim in claims for q in claim]
    assert sorted(taken) == sorted(ids)


async def test_retry_queued(store: Store) -> None:
    """retry makes one entry, or every entry, due now and returns how many it touched
    (0 for an unknown id); an entry due earlier stays as early; a held entry stays held
    (releasing it would let a second worker send it at the same time)."""
    ids = []
    for i in range(3):
        blob = await write_blob(store, f"m{i}".encode())
        ids.append(await store.enqueue("s@example.org", [QueuedRecipient(f"r{i}@x.test")], blob))
    far = datetime.now(UTC) + timedelta(days=1)
    for qid in ids:
        await store.reschedule(qid, far, "451 try later")
    assert await store.claim_queue(datetime.now(UTC), 10, 60) == []
    assert await store.retry_queued(ids[0]) == 1
    assert await store.retry_queued(ids[0] + 1000) == 0
    now = datetime.now(UTC) + timedelta(seconds=1)
    [claimed] = await store.claim_queue(now, 10, 60)
    assert claimed.id == ids[0] and claimed.next_attempt <= now
    assert await store.retry_queued() == 3
    due = await store.claim_queue(now + timedelta(seconds=1), 10, 60)
    assert [q.id for q in due] == [ids[1], ids[2]]  # ids[0] is still held
    entry = await store.get_queued(ids[0])
    assert entry is not None and entry.next_attempt == claimed.next_attempt


async def test_remove_queued_drops_its_blob(env: Env) -> None:
    """Removing an entry removes its recipients and, when nothing else refers to it,
    its blob (NotFound afterwards); a blob a message still holds stays; removing twice
    returns False."""
    s = env.store
    blob = await write_blob(s, b"only queued")
    qid = await s.enqueue("s@example.org", [QueuedRecipient("r@x.test")], blob)
    assert await s.remove_queued(qid) is True
    assert await s.get_queued(qid) is None and await s.list_queue() == []
    with pytest.raises(NotFound):
        await s.read_blob(blob.blob_id)
    with pytest.raises(NotFound):
        await s.open_blob(blob.blob_id)
    assert await s.remove_queued(qid) is False
    # shared with a message: the blob stays until its last holder goes
    data = b"Subject: both\r\n\r\nhi\r\n"
    shared = await write_blob(s, data)
    results, qid = await s.deliver_and_enqueue(
        [_Target(env.inbox.id, shared, dummy_meta(data))],
        "s@example.org",
        [QueuedRecipient("r@x.test")],
        shared,
    )
    assert await s.remove_queued(qid) is True
    assert await s.read_message(env.inbox.id, results[0].uid) == data
    await s.set_flags(env.inbox.id, [results[0].uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(env.inbox.id)
    assert await blob_gone(s, shared.blob_id)


class _Target:
    """A `store.api.Delivery`."""

    def __init__(self, mailbox_id: int, blob: BlobHandle, meta: MessageMeta) -> None:
        self.mailbox_id = mailbox_id
        self.blob = blob
        self.meta = meta
        self.flags: frozenset[str] = frozenset()
        self.internaldate = datetime.now(UTC)


async def test_deliver_and_enqueue_is_one_transaction(env: Env) -> None:
    """deliver_and_enqueue stores the local copies and the queue entry together,
    publishes MessagesAdded as deliver does, and a failure of either half leaves
    neither: over quota, no queue entry; no recipients to queue, no copy."""
    s = env.store
    data = b"Subject: mixed\r\n\r\nhello\r\n"
    blob = await write_blob(s, data)
    sub = env.bus.subscribe(env.account.id)
    try:
        results, qid = await s.deliver_and_enqueue(
            [_Target(env.inbox.id, blob, dummy_meta(data))],
            "alice@example.org",
            [QueuedRecipient("far@x.test", notify="FAILURE")],
            blob,
            dsn_envid="E",
            dsn_ret="FULL",
            origin=QueueOrigin.SUBMISSION,
        )
        async with asyncio.timeout(5):
            event = await anext(sub)
    finally:
        await sub.aclose()
    assert isinstance(event, MessagesAdded) and event.mailbox_id == env.inbox.id
    assert [row.uid for row in event.rows] == [results[0].uid]
    assert await s.read_message(env.inbox.id, results[0].uid) == data
    q = await s.get_queued(qid)
    assert q is not None and q.blob_id == blob.blob_id and q.origin is QueueOrigin.SUBMISSION
    assert (q.dsn_envid, q.dsn_ret, q.recipients[0].notify) == ("E", "FULL", "FAILURE")

    await s.set_quota("alice@example.org", len(data) + 5)
    big = b"Subject: big\r\n\r\n" + b"x" * 100
    big_blob = await write_blob(s, big)
    with pytest.raises(QuotaExceeded):
        await s.deliver_and_enqueue(
            [_Target(env.inbox.id, big_blob, dummy_meta(big))],
            "alice@example.org",
            [QueuedRecipient("far@x.test")],
            big_blob,
        )
    assert [e.id for e in await s.list_queue()] == [qid]
    assert await s.uids(env.inbox.id) == [results[0].uid]
    with pytest.raises(Conflict):
        await s.deliver_and_enqueue(
            [_Target(env.inbox.id, blob, dummy_meta(data))], "alice@example.org", [], blob
        )
    assert await s.uids(env.inbox.id) == [results[0].uid]
    with pytest.raises(NotFound):  # a mailbox gone: no queue entry either
        await s.deliver_and_enqueue(
            [_Target(9999, big_blob, dummy_meta(big))],
            "alice@example.org",
            [QueuedRecipient("far@x.test")],
            big_blob,
        )
    assert [e.id for e in await s.list_queue()] == [qid]


async def test_dkim_keys(store: Store) -> None:
    """Keys are kept per domain and selector, replaced whole on put, listed newest
    first (all, or one domain's), bytes and times as given."""
    t0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    a1 = DkimKey("example.org", "s1", "ed25519-sha256", b"-----PEM a1-----\n", "AAA=", t0)
    a2 = DkimKey("example.org", "s2", "rsa-sha256", b"\x00pem a2", "BBB=", t0 + timedelta(days=1))
    b1 = DkimKey("other.test", "s1", "ed25519-sha256", b"pem b1", "CCC=", t0 + timedelta(days=2))
    assert await store.list_dkim_keys() == []
    for key in (a1, a2, b1):
        await store.put_dkim_key(key)
    assert await store.list_dkim_keys() == [b1, a2, a1]
    assert await store.list_dkim_keys("example.org") == [a2, a1]
    assert await store.list_dkim_keys("nowhere.test") == []
    a1_new = dataclasses.replace(
        a1, private_key=b"new", public_key="DDD=", created_at=t0 + timedelta(days=3)
    )
    await store.put_dkim_key(a1_new)
    assert await store.list_dkim_keys("example.org") == [a1_new, a2]


async def test_reopen_keeps_everything(make_store: Callable[[], Store]) -> None:
    """Close + reopen: data, UIDNEXT and UIDVALIDITY survive; UIDs are not reused after
    expunge and restart."""
    s = make_store()
    await s.open()
    await s.add_domain("example.org")
    acct = await s.add_account("a@example.org", "h")
    inbox = await s.get_mailbox(acct.id, "INBOX")
    assert inbox is not None
    for _ in range(3):
        blob = await write_blob(s, b"x")
        await s.append(inbox.id, blob, dummy_meta(b"x"))
    await s.set_flags(inbox.id, [2, 3], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(inbox.id)
    await s.close()
    await s.close()  # idempotent

    s = make_store()
    await s.open()
    try:
        again = await s.get_mailbox(acct.id, "INBOX")
        assert again is not None
        assert again.uidvalidity == inbox.uidvalidity and again.uidnext == 4
        blob = await write_blob(s, b"y")
        res = await s.append(inbox.id, blob, dummy_meta(b"y"))
        assert res.uid == 4
        assert await s.uids(inbox.id) == [1, 4]
        assert await s.read_message(inbox.id, 1) == b"x"
    finally:
        await s.close()


async def test_concurrent_deliveries_get_unique_ascending_uids(env: Env) -> None:
    """50 concurrent appends to one mailbox: 50 distinct UIDs, 1..50, each with a
    distinct MODSEQ that grows with the UID."""
    s, box = env.store, env.inbox.id
    blobs = [await write_blob(s, f"msg {i}".encode()) for i in range(50)]
    results = await asyncio.gather(
        *(s.append(box, b, dummy_meta(f"msg {i}".encode())) for i, b in enumerate(blobs))
    )
    uids = [r.uid for r in results]
    assert sorted(uids) == list(range(1, 51))
    by_uid = sorted(results, key=lambda r: r.uid)
    modseqs = [r.modseq for r in by_uid]
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 50
    assert await s.uids(box) == list(range(1, 51))
    for r, i in zip(results, range(50), strict=True):
        assert await s.read_message(box, r.uid) == f"msg {i}".encode()


async def test_unstorable_text_fails_its_delivery_alone(env: Env) -> None:
    """Text that cannot be encoded (a lone surrogate) fails that append only; the
    deliveries committed with it in the same batch, and the store, carry on."""
    s, box = env.store, env.inbox.id
    coros = []
    for i in range(10):
        data = f"Subject: {i}\r\n\r\nbody{i}\r\n".encode()
        blob = await write_blob(s, data)
        # past the 200 characters dummy_meta copies into the preview column
        text = "x" * 300 + "\udcff\n" if i == 4 else f"good{i}qq\n"
        coros.append(s.append(box, blob, dummy_meta(data, text=text)))
    async with asyncio.timeout(30):  # a dead writer would hang here, not fail
        results = await asyncio.gather(*coros, return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [i == 4 for i in range(10)]
    assert len(await s.search(box, SearchText("qq"))) == 9
    data = b"Subject: after\r\n\r\nafter\r\n"
    later = await s.append(box, await write_blob(s, data), dummy_meta(data, text="afterzz\n"))
    assert await s.search(box, SearchText("afterzz")) == [later.uid]


async def test_expunges_among_appends_remove_exactly_their_files(env: Env) -> None:
    """Flag changes and expunges commit without waiting for the disk, so their files
    are removed only once a later sync makes the removal durable: here, expunges and
    appends race each other, and once all have returned every expunged message's file
    is gone soon after (waited for: it may outlive the answer until a sync) and every
    kept message's file is there."""
    s, box = env.store, env.inbox.id
    for i in range(30):
        data = f"Subject: {i}\r\n\r\nbody {i}\r\n".encode()
        await s.append(box, await write_blob(s, data), dummy_meta(data))
    infos = {info.uid: info for info in await s.fetch(box, list(range(1, 31)))}
    doomed = list(range(1, 31, 2))
    await s.set_flags(box, doomed, frozenset({"\\Deleted"}), FlagMode.ADD)

    async def append(i: int) -> int:
        data = f"Subject: new {i}\r\n\r\nnew {i}\r\n".encode()
        return (await s.append(box, await write_blob(s, data), dummy_meta(data))).uid

    async with asyncio.timeout(30):
        results = await asyncio.gather(
            *(s.expunge(box, [uid]) for uid in doomed), *(append(i) for i in range(10))
        )
    assert sorted(uid for gone in results[: len(doomed)] for uid in gone) == doomed  # type: ignore[union-attr]
    for uid, info in infos.items():
        if uid in doomed:
            assert await blob_gone(s, info.blob_id), uid
        else:
            assert await blob_exists(s, info.blob_id), uid
    kept = await s.fetch(box, list(range(1, 100)))
    assert len(kept) == 30 - len(doomed) + 10
    assert all([await blob_exists(s, info.blob_id) for info in kept])


async def blob_exists(store: Store, blob_id: int) -> bool:
    try:
        await store.read_blob(blob_id, 0, 1)
    except NotFound:
        return False
    return True


async def test_release_claims_after_a_crash(store: Store) -> None:
    """What an earlier run held (a SIGKILL mid-send leaves its claims) is due again at
    once after `release_claims`, not when the leases run out."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    blob = await write_blob(store, b"m")
    qid = await store.enqueue("s@example.org", [QueuedRecipient("r@x.test")], blob)
    assert [q.id for q in await store.claim_queue(now, 10, 3600)] == [qid]
    assert await store.claim_queue(now, 10, 3600) == []
    assert await store.release_claims() == 1
    again = await store.claim_queue(now, 10, 3600)
    assert [q.id for q in again] == [qid]


async def test_entry_with_nothing_left_to_try_is_claimed_to_be_settled(store: Store) -> None:
    """Every recipient has its outcome but the entry is still there: its worker recorded
    them and died before sending the DSNs and removing it. A claim returns it, so that
    the next worker settles it (a lost bounce otherwise, and an entry kept for good)."""
    now = datetime.now(UTC) + timedelta(seconds=1)
    blob = await write_blob(store, b"m")
    qid = await store.enqueue("s@example.org", [QueuedRecipient("r@x.test")], blob)
    await store.record_outcomes(
        qid, [RecipientOutcome(0, RecipientState.FAILED, "5.1.1", "550 no such user")]
    )
    [entry] = await store.claim_queue(now, 10, 60)
    assert entry.id == qid and entry.pending == ()
    assert entry.recipients[0].state is RecipientState.FAILED
