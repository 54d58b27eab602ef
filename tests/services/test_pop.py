"""POP3 maildrops on a real SQLite store: snapshot, lock, UIDL, and each on-retrieve policy."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.message.parse import parse
from pillarbox.model import (
    Account,
    FlagMode,
    MessagesExpunged,
    PopOnRetrieve,
    PopScope,
)
from pillarbox.services.pop import (
    Maildrop,
    MaildropChanged,
    MaildropInUse,
    NoSuchMessage,
    PopService,
    unique_id,
)
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.blobs import READ_CHUNK  # the SQLite store's read-ahead at open

ADDRESS = "alice@example.test"


def message(n: int) -> bytes:
    return f"From: bob@example.test\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


async def append(store: Store, mailbox_id: int, data: bytes) -> int:
    """Deliver by the store API, with metadata computed by `message.parse`."""
    writer = store.new_blob()
    await writer.write(data)
    blob = await writer.finish()
    return (await store.append(mailbox_id, blob, parse(data))).uid


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    await s.add_account(ADDRESS, "$argon2id$dummy")
    try:
        yield s
    finally:
        await s.close()


async def account(store: Store) -> Account:
    found = await store.get_account(ADDRESS)
    assert found is not None
    return found


async def inbox_id(store: Store) -> int:
    inbox = await store.get_mailbox((await account(store)).id, "INBOX")
    assert inbox is not None
    return inbox.id


async def fill(store: Store, count: int) -> list[int]:
    box = await inbox_id(store)
    return [await append(store, box, message(i)) for i in range(1, count + 1)]


async def session(pop: PopService, store: Store) -> Maildrop:
    return await pop.open(await account(store))


async def uidls(pop: PopService, store: Store) -> list[str]:
    drop = await session(pop, store)
    try:
        return [e.unique_id for e in drop.listing()]
    finally:
        await drop.close()


async def test_snapshot_numbers_sizes_and_contents(store: Store) -> None:
    """The maildrop is INBOX at login; numbers start at 1; sizes are the file's bytes."""
    await fill(store, 3)
    pop = PopService(store)
    drop = await session(pop, store)
    try:
        assert drop.stat() == (3, sum(len(message(i)) for i in (1, 2, 3)))
        assert [e.number for e in drop.listing()] == [1, 2, 3]
        reader = await drop.open_message(2)
        data = b""
        while chunk := await reader.read(7):
            data += chunk
        await reader.close()
        assert data == message(2)
        await append(store, await inbox_id(store), message(4))  # arrives mid-session
        assert drop.stat()[0] == 3  # not in this session's snapshot
    finally:
        await drop.close()
    assert len(await uidls(pop, store)) == 4  # ... but in the next one


async def test_dele_marks_rset_restores_and_bad_numbers(store: Store) -> None:
    """DELE hides a message from the session only; RSET brings it back; bad numbers refuse."""
    await fill(store, 3)
    pop = PopService(store)
    drop = await session(pop, store)
    try:
        drop.delete(2)
        assert [e.number for e in drop.listing()] == [1, 3]
        assert drop.stat() == (2, len(message(1)) + len(message(3)))
        with pytest.raises(NoSuchMessage, match="already deleted"):
            drop.delete(2)
        with pytest.raises(NoSuchMessage, match="already deleted"):
            await drop.open_message(2)
        for bad in (0, 4, 10**9):
            with pytest.raises(NoSuchMessage, match=f"No message {bad}"):
                drop.entry(bad)
        drop.reset()
        assert drop.stat()[0] == 3
    finally:
        await drop.close()


async def test_second_session_is_in_use_until_the_first_ends(store: Store) -> None:
    """RFC 1939 §4 exclusive lock: a second login gets MaildropInUse; closing frees it."""
    pop = PopService(store)
    first = await session(pop, store)
    with pytest.raises(MaildropInUse):
        await session(pop, store)
    await first.close()
    await first.close()  # idempotent
    second = await session(pop, store)
    await second.close()


async def test_concurrent_logins_get_exactly_one_lock(store: Store) -> None:
    """Two logins racing on the event loop: one wins, the other is IN-USE."""
    await fill(store, 2)
    pop = PopService(store)
    acct = await account(store)
    results = await asyncio.gather(pop.open(acct), pop.open(acct), return_exceptions=True)
    drops = [r for r in results if isinstance(r, Maildrop)]
    assert len(drops) == 1
    assert sum(isinstance(r, MaildropInUse) for r in results) == 1
    await drops[0].close()


async def test_session_that_ends_without_quit_changes_nothing(store: Store) -> None:
    """A dropped connection (close without commit) deletes nothing."""
    uids = await fill(store, 2)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(1)
    drop.delete(2)
    await drop.close()
    assert await store.uids(await inbox_id(store)) == uids
    assert len(await uidls(pop, store)) == 2


async def test_uidl_is_stable_unique_and_never_reused(store: Store) -> None:
    """UIDL survives sessions and a restart, and a new message never gets an old value."""
    await fill(store, 2)
    pop = PopService(store)
    before = await uidls(pop, store)
    assert before == await uidls(pop, store)
    assert len(set(before)) == 2
    for value in before:
        assert 1 <= len(value) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in value)
    # delete message 1 for real, then deliver a new one: its UIDL is new
    drop = await session(pop, store)
    drop.delete(1)
    await drop.commit()
    await drop.close()
    await fill(store, 1)
    after = await uidls(pop, store)
    assert after[0] == before[1]
    assert after[1] not in before


async def test_uidl_after_restart_and_inbox_rename(tmp_path: Path) -> None:
    """Across a store restart UIDLs are equal; after renaming INBOX, new mail is new."""
    data = tmp_path / "data"
    s = SqliteStore(data)
    await s.open()
    await s.add_domain("example.test")
    await s.add_account(ADDRESS, "$argon2id$dummy")
    await fill(s, 2)
    before = await uidls(PopService(s), s)
    await s.close()
    s = SqliteStore(data)
    await s.open()
    try:
        assert await uidls(PopService(s), s) == before
        acct = await account(s)
        await s.rename_mailbox(acct.id, "INBOX", "Old")
        assert await uidls(PopService(s), s) == []
        await fill(s, 2)
        fresh = await uidls(PopService(s), s)
        assert len(fresh) == 2 and not set(fresh) & set(before)
    finally:
        await s.close()


async def test_unique_id_format() -> None:
    """UIDL value: "<UIDVALIDITY>.<UID>"."""
    assert unique_id(1712345678, 42) == "1712345678.42"


async def test_policy_keep_hides_from_pop_but_not_imap(store: Store) -> None:
    """keep: the message stays in INBOX unchanged, and later POP3 sessions don't list it."""
    uids = await fill(store, 3)
    await store.set_pop_policy(ADDRESS, PopOnRetrieve.KEEP, PopScope.ALL)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(1)
    assert await drop.commit() == 2
    await drop.close()
    box = await inbox_id(store)
    assert await store.uids(box) == uids
    rows = await store.fetch_flags(box, uids)
    assert all("\\Seen" not in r.flags for r in rows)
    assert await uidls(pop, store) == [
        unique_id(*(await uidvalidity_uid(store, u))) for u in uids[1:]
    ]


async def uidvalidity_uid(store: Store, uid: int) -> tuple[int, int]:
    inbox = await store.get_mailbox_by_id(await inbox_id(store))
    assert inbox is not None
    return inbox.uidvalidity, uid


async def test_policy_mark_read_sets_seen_and_hides(store: Store) -> None:
    """mark-read: \\Seen is set (IMAP sees it) and POP3 no longer lists the message."""
    uids = await fill(store, 2)
    await store.set_pop_policy(ADDRESS, PopOnRetrieve.MARK_READ, PopScope.ALL)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(2)
    await drop.commit()
    await drop.close()
    box = await inbox_id(store)
    assert await store.uids(box) == uids
    flags = {r.uid: r.flags for r in await store.fetch_flags(box, uids)}
    assert "\\Seen" in flags[uids[1]] and "\\Seen" not in flags[uids[0]]
    assert len(await uidls(pop, store)) == 1


async def test_policy_archive_moves_to_archive_even_if_it_was_deleted(store: Store) -> None:
    """archive: the message moves to \\Archive; a deleted Archive is created again."""
    uids = await fill(store, 2)
    await store.set_pop_policy(ADDRESS, PopOnRetrieve.ARCHIVE, PopScope.ALL)
    acct = await account(store)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(1)
    await drop.commit()
    await drop.close()
    archive = await store.get_special_mailbox(acct.id, "\\Archive")
    assert archive is not None
    assert len(await store.uids(archive.id)) == 1
    assert await store.uids(await inbox_id(store)) == uids[1:]
    await store.delete_mailbox(acct.id, archive.name)
    drop = await session(pop, store)
    drop.delete(1)
    await drop.commit()
    await drop.close()
    archive = await store.get_special_mailbox(acct.id, "\\Archive")
    assert archive is not None and len(await store.uids(archive.id)) == 1
    assert await store.uids(await inbox_id(store)) == []


async def test_policy_delete_expunges_only_the_marked_messages(store: Store) -> None:
    """delete: exactly the DELE'd UIDs go, even when IMAP set \\Deleted on others."""
    uids = await fill(store, 3)
    box = await inbox_id(store)
    await store.set_flags(box, [uids[2]], frozenset({"\\Deleted"}), FlagMode.ADD)
    acct = await account(store)
    events = store.bus.subscribe(acct.id)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(1)
    assert await drop.commit() == 2
    await drop.close()
    assert await store.uids(box) == uids[1:]
    # IMAP sessions learn of it from the change bus
    async with asyncio.timeout(10):
        async for change in events:
            if isinstance(change, MessagesExpunged):
                assert change.uids == (uids[0],)
                break


async def test_commit_skips_messages_imap_already_removed(store: Store) -> None:
    """If IMAP expunged a DELE'd message meanwhile, QUIT still succeeds for the rest."""
    uids = await fill(store, 2)
    box = await inbox_id(store)
    pop = PopService(store)
    drop = await session(pop, store)
    drop.delete(1)
    drop.delete(2)
    await store.set_flags(box, [uids[0]], frozenset({"\\Deleted"}), FlagMode.ADD)
    await store.expunge(box, [uids[0]])
    assert await drop.commit() == 0
    await drop.close()
    assert await store.uids(box) == []


async def test_retr_of_a_message_expunged_by_imap_after_open_still_streams(store: Store) -> None:
    """The file is held open, so an expunge during RETR cannot cut the message short."""
    uids = await fill(store, 1)
    box = await inbox_id(store)
    pop = PopService(store)
    drop = await session(pop, store)
    reader = await drop.open_message(1)
    await store.set_flags(box, uids, frozenset({"\\Deleted"}), FlagMode.ADD)
    await store.expunge(box, uids)
    assert await reader.read() == message(1)
    await reader.close()
    await drop.close()


async def test_scope_from_now_hides_older_mail(store: Store) -> None:
    """from-now: only mail that arrived after the policy was set is visible to POP3."""
    await fill(store, 2)
    await store.set_pop_policy(ADDRESS, PopOnRetrieve.DELETE, PopScope.FROM_NOW)
    pop = PopService(store)
    assert await uidls(pop, store) == []
    new = await append(store, await inbox_id(store), message(9))
    assert [v.split(".")[1] for v in await uidls(pop, store)] == [str(new)]
    await store.set_pop_policy(ADDRESS, PopOnRetrieve.DELETE, PopScope.ALL)
    assert len(await uidls(pop, store)) == 3


async def test_messages_around_the_read_chunk_size_stream_whole(store: Store) -> None:
    """A message read ahead at open (shorter than, equal to, or longer than one read
    chunk) comes back byte for byte, in pieces of any size, and ends with b""."""
    box = await inbox_id(store)
    bodies = []
    for size in (READ_CHUNK - 200, READ_CHUNK, 2 * READ_CHUNK + 17):
        line = b"x" * 70 + b"\r\n"
        body = line * (size // len(line) + 1)
        data = (b"Subject: big\r\n\r\n" + body)[: size - 2] + b"\r\n"
        assert len(data) == size
        bodies.append(data)
        await append(store, box, data)
    pop = PopService(store)
    drop = await session(pop, store)
    try:
        for number, expected in enumerate(bodies, start=1):
            for piece in (READ_CHUNK, 100_003):
                reader = await drop.open_message(number)
                got = b""
                while chunk := await reader.read(piece):
                    got += chunk
                assert await reader.read(piece) == b""
                await reader.close()
                await reader.close()  # idempotent
                assert got == expected
    finally:
        await drop.close()


async def test_retr_does_not_wait_for_the_default_executor(store: Store) -> None:
    """RETR's file reads never queue behind the loop's default executor, which password
    hashing fills during a burst of logins: with every default worker blocked, a message
    still opens and streams to its end."""
    await fill(store, 1)
    pop = PopService(store)
    drop = await session(pop, store)
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blocked = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        async with asyncio.timeout(30):  # a hang guard, not a timing assertion
            reader = await drop.open_message(1)
            got = await reader.read()
            assert await reader.read() == b""
            await reader.close()
        assert got == message(1)
    finally:
        release.set()
        await asyncio.gather(*blocked)
        await drop.close()


async def test_an_open_session_keeps_renewing_its_lease(store: Store) -> None:
    """The lock is a lease reaching `lease` seconds ahead, renewed every `renew_every`
    while the session is open: a session open for several leases still holds the
    maildrop, and closing it frees the maildrop at once."""
    pop = PopService(store, lease=0.2, renew_every=0.02)
    acct = await account(store)
    drop = await session(pop, store)
    until = time.monotonic() + 0.6  # three leases
    while time.monotonic() < until:  # the time passing is what is under test
        assert await pop.is_locked(acct.id)
        await asyncio.sleep(0.01)
    await drop.close()
    assert not await pop.is_locked(acct.id)


async def test_a_session_that_lost_its_lease_commits_nothing(store: Store) -> None:
    """A session whose lease ran out (its node stalled) and was taken by another session
    must not apply its DELEs: the other session may be showing those messages."""
    uids = await fill(store, 2)
    stalled = PopService(store, lease=-1.0, renew_every=3600)  # its lease is over at once
    drop = await session(stalled, store)
    drop.delete(1)
    other = await session(PopService(store), store)
    with pytest.raises(MaildropChanged):
        await drop.commit()
    assert await store.uids(await inbox_id(store)) == uids
    await drop.close()
    assert await PopService(store).is_locked((await account(store)).id)  # other's, still
    await other.close()
