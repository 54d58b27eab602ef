"""Fetching over IMAP from another Pillarbox: several folders, UIDVALIDITY, deletion."""

from __future__ import annotations

import imaplib

from pillarbox.message.parse import parse
from pillarbox.model import FlagMode
from pillarbox.model.fetch import FetchFolderState
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.fetcher.conftest import ALICE, Local, message, put, remote_subjects


def rename(server: RunningServer, old: str, new: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        imap.login(ALICE, PASSWORD)
        assert imap.rename(f'"{old}"', f'"{new}"')[0] == "OK"
    finally:
        imap.logout()


async def test_two_folders_without_duplicates(provider: RunningServer, local: Local) -> None:
    """Two source folders go to one target folder; each run takes only UIDs above the
    last one fetched per folder (RFC 9051 §2.3.1.1), so repeated runs add nothing; the
    remote \\Seen is carried and the remote copy stays unseen by our fetch (BODY.PEEK)."""
    put(provider, message(1))
    put(provider, message(2), folder="Lists")
    source = await local.add(
        provider, "imap", source_folders=["INBOX", "Lists"], target_folder="Elsewhere"
    )
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 2)
    assert await local.subjects("Elsewhere") == ["message 1", "message 2"]
    assert (await local.run(source)).fetched == 0
    put(provider, message(3), folder="Lists")
    put(provider, message(4))
    assert (await local.run(source)).fetched == 2
    assert (await local.run(source)).fetched == 0
    assert await local.subjects("Elsewhere") == [f"message {n}" for n in (1, 2, 3, 4)]
    folders = {f.folder: f for f in await local.store.fetch_folders(source.id)}
    assert folders["INBOX"].last_uid == 2 and folders["Lists"].last_uid == 2
    head = (await local.messages("Elsewhere"))[0].split(b"\r\n\r\n", 1)[0]
    assert b"with IMAP id" in head
    # Nothing we did marked the remote copies \Seen.
    imap = imaplib.IMAP4("127.0.0.1", provider.port("imap"))
    try:
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX", readonly=True)
        assert imap.search(None, "UNSEEN")[1][0].split() == [b"1", b"2"]
    finally:
        imap.logout()


async def test_a_new_uidvalidity_fetches_nothing_twice(
    provider: RunningServer, local: Local
) -> None:
    """After the remote folder gets a new UIDVALIDITY (renamed away and back), every
    message is looked at again and those already here are recognised by their header
    digest and skipped; a message that is really new still arrives."""
    put(provider, message(1), folder="Lists")
    put(provider, message(2), folder="Lists")
    source = await local.add(provider, "imap", source_folders=["Lists"])
    assert (await local.run(source)).fetched == 2
    before = (await local.store.fetch_folders(source.id))[0]
    rename(provider, "Lists", "Moved")
    rename(provider, "Moved", "Lists")
    put(provider, message(3), folder="Lists")
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 1)
    after = (await local.store.fetch_folders(source.id))[0]
    assert after.uidvalidity != before.uidvalidity
    assert await local.subjects() == ["message 1", "message 2", "message 3"]
    entries = await local.store.fetched(source.id, "Lists")
    assert {e.uidvalidity for e in entries} == {after.uidvalidity}  # old records dropped
    assert (await local.run(source)).fetched == 0


async def test_delete_expunges_what_was_stored(provider: RunningServer, local: Local) -> None:
    """With "delete", each stored message is deleted remotely (UID EXPUNGE, RFC 4315
    §2.1) and the folder state keeps later runs from fetching anything again."""
    for n in (1, 2):
        put(provider, message(n))
    source = await local.add(provider, "imap", policy="delete")
    report = await local.run(source)
    assert (report.error, report.fetched, report.deleted) == ("", 2, 2)
    assert remote_subjects(provider) == []
    put(provider, message(3))
    assert (await local.run(source)).fetched == 1
    assert remote_subjects(provider) == []
    assert await local.subjects() == ["message 1", "message 2", "message 3"]
    state = await local.store.fetch_folders(source.id)
    assert state == [FetchFolderState("INBOX", state[0].uidvalidity, 3, state[0].highestmodseq)]


async def test_seen_and_flagged_are_carried(provider: RunningServer, local: Local) -> None:
    """A message read or flagged at the provider arrives read or flagged here."""
    put(provider, message(1))
    imap = imaplib.IMAP4("127.0.0.1", provider.port("imap"))
    try:
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    finally:
        imap.logout()
    source = await local.add(provider, "imap")
    assert (await local.run(source)).fetched == 1
    inbox = await local.store.get_mailbox(local.account.id, "INBOX")
    assert inbox is not None
    rows = await local.store.fetch_flags(inbox.id, await local.store.uids(inbox.id))
    assert {"\\Seen", "\\Flagged"} <= set(rows[0].flags)


def store_remote(server: RunningServer, uid: int, change: str) -> None:
    """alice changes a message's flags at the provider (`change`: "+FLAGS (\\Seen)")."""
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        imap.login(ALICE, PASSWORD)
        imap.select("INBOX")
        op, flags = change.split(" ", 1)
        assert imap.uid("STORE", str(uid), op, flags)[0] == "OK"
    finally:
        imap.logout()


async def local_flags(local: Local) -> dict[str, frozenset[str]]:
    """Subject -> flags of bob's INBOX here."""
    box = await local.store.get_mailbox(local.account.id, "INBOX")
    assert box is not None
    uids = await local.store.uids(box.id)
    rows = {r.uid: r.flags for r in await local.store.fetch_flags(box.id, uids)}
    return {parse(await local.store.read_message(box.id, uid)).subject: rows[uid] for uid in uids}


async def test_condstore_carries_seen_and_flagged(provider: RunningServer, local: Local) -> None:
    """The provider offers CONDSTORE: each run asks for the flags changed since the
    HIGHESTMODSEQ it remembers (RFC 7162 §3.1.2.1, CHANGEDSINCE §3.1.4.1) and carries
    \\Seen and \\Flagged to the local copies; only what changed there changes here, so a
    message read here stays read when it is unflagged there."""
    one, two = put(provider, message(1)), put(provider, message(2))
    source = await local.add(provider, "imap")
    assert (await local.run(source)).fetched == 2
    state = (await local.store.fetch_folders(source.id))[0]
    assert state.highestmodseq > 0
    assert await local_flags(local) == {"message 1": frozenset(), "message 2": frozenset()}
    store_remote(provider, one, "+FLAGS (\\Seen)")
    store_remote(provider, two, "+FLAGS (\\Flagged)")
    report = await local.run(source)
    assert (report.error, report.fetched, report.flags_changed) == ("", 0, 2)
    assert await local_flags(local) == {
        "message 1": frozenset({"\\Seen"}),
        "message 2": frozenset({"\\Flagged"}),
    }
    assert (await local.run(source)).flags_changed == 0  # nothing changed since
    box = await local.store.get_mailbox(local.account.id, "INBOX")
    second = (await local.store.uids(box.id))[1]
    await local.store.set_flags(box.id, [second], frozenset({"\\Seen"}), FlagMode.ADD)
    store_remote(provider, two, "-FLAGS (\\Flagged)")
    store_remote(provider, one, "-FLAGS (\\Seen)")
    put(provider, message(3))
    report = await local.run(source)
    assert (report.fetched, report.flags_changed) == (1, 2)
    assert await local_flags(local) == {
        "message 1": frozenset(),
        "message 2": frozenset({"\\Seen"}),  # read here: stays read
        "message 3": frozenset(),
    }
    after = (await local.store.fetch_folders(source.id))[0]
    assert after.highestmodseq > state.highestmodseq and after.last_uid == 3
