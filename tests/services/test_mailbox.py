"""services.mailbox: name validation and isolation, and the selected view's sequence rules.

The view tests feed change events as the bus delivers them and check what the client
would be told; the account tests run on a real SqliteStore in a temporary directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.message.parts import MAX_HEADER_SIZE
from pillarbox.model import (
    FlagMode,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)
from pillarbox.services.errors import LimitReached
from pillarbox.services.mailbox import (
    AccountMailboxes,
    InvalidMailboxName,
    MailboxExists,
    MailboxNotAllowed,
    NewMessage,
    NoSuchMailbox,
    normalize_name,
)
from pillarbox.services.view import MessageSetError, SelectedView
from pillarbox.store.sqlite import SqliteStore

BOX = Mailbox(id=7, account_id=1, name="INBOX", uidvalidity=1, uidnext=11, highestmodseq=5)


def view(uids: list[int]) -> SelectedView:
    return SelectedView(BOX, uids, read_only=False)


def row(uid: int, modseq: int = 10, *flags: str) -> FlagRow:
    return FlagRow(uid, frozenset(flags), modseq)


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/",
        "/etc",
        "a//b",
        "..",
        "../bob@example.test/INBOX",
        "a/../b",
        "a/./b",
        "x%",
        "x*",
        "a\x00b",
        "a\r\nb",
        "\x7f",
        "a" * 600,
        "/".join(["a"] * 40),
        "\udcff",
        " a",
    ],
)
def test_hostile_names_are_refused(name: str) -> None:
    """Names that could be ambiguous, escape a level or carry controls never pass."""
    with pytest.raises(InvalidMailboxName):
        normalize_name(name)


def test_inbox_is_case_insensitive_and_trailing_separator_dropped() -> None:
    """RFC 9051 §5.1: INBOX in any case (also as a parent); "a/" means "a"."""
    assert normalize_name("inbox") == "INBOX"
    assert normalize_name("InBoX/Sub") == "INBOX/Sub"
    assert normalize_name("Work/") == "Work"
    assert normalize_name("Über/straße") == "Über/straße"


# --- view: numbers ------------------------------------------------------------------------


def test_sequence_sets_map_to_uids_without_queries() -> None:
    """Sequence numbers index the UID list; "*" is the last; out of range (also "*" when
    empty) is an error (RFC 9051 §9 seq-number)."""
    v = view([3, 5, 8, 13, 21])
    assert v.uids_for_sequence([(1, 1), (3, None)]) == [3, 8, 13, 21]
    assert v.uids_for_sequence([(4, 2)]) == [5, 8, 13]
    assert v.uids_for_sequence([(1, 2), (2, 3)]) == [3, 5, 8]
    with pytest.raises(MessageSetError):
        v.uids_for_sequence([(6, 6)])
    with pytest.raises(MessageSetError):
        view([]).uids_for_sequence([(None, None)])  # "*" in an empty mailbox
    with pytest.raises(MessageSetError):
        view([]).uids_for_sequence([(1, None)])


def test_search_sequence_sets_beyond_the_last_message_match_nothing() -> None:
    """In a SEARCH key (not strict) numbers past the last message select nothing instead
    of failing; the part of a range that is inside still counts."""
    v = view([3, 5, 8, 13, 21])
    assert v.uids_for_sequence([(1000, 1000)], strict=False) == []
    assert v.uids_for_sequence([(4, 1000)], strict=False) == [13, 21]
    assert v.uids_for_sequence([(1000, None)], strict=False) == [21]
    assert view([]).uids_for_sequence([(None, None)], strict=False) == []


def test_uid_sets_ignore_missing_and_star_includes_last() -> None:
    """RFC 9051 §6.4.9: unknown UIDs are ignored; 100:* includes the highest UID."""
    v = view([3, 5, 8, 13, 21])
    assert v.uids_for_uid_set([(4, 13)]) == [5, 8, 13]
    assert v.uids_for_uid_set([(100, None)]) == [21]
    assert v.uids_for_uid_set([(1, 2)]) == []
    assert v.seq_of(13) == 4 and v.seq_of(4) is None


# --- view: changes -------------------------------------------------------------------------


def test_expunges_are_held_back_until_allowed() -> None:
    """RFC 9051 §7.5.1: during FETCH/STORE/SEARCH by number no EXPUNGE, numbers stable."""
    v = view([1, 2, 3, 4])
    v.record(MessagesExpunged(1, BOX.id, (2, 4), 20))
    held = v.take_updates(allow_expunge=False)
    assert held.expunged == [] and held.exists is None
    assert v.count == 4 and v.seq_of(3) == 3 and v.is_expunged(2)
    now = v.take_updates(allow_expunge=True)
    assert now.expunged == [4, 2]  # highest first: each leaves the rest unchanged
    assert v.count == 2 and v.seq_of(3) == 2
    assert now.exists is None  # the EXPUNGEs already told the client the new count


def test_highestmodseq_told_stays_below_held_back_expunges() -> None:
    """RFC 7162 §3.1.2.1 with RFC 9051 §7.5.1: while expunges are held back, the
    HIGHESTMODSEQ the client may be given is below the first of them; once they are
    reported it is the view's highest again. Removed messages come with their UIDs (for
    VANISHED, RFC 7162 §3.2.10)."""
    v = view([1, 2, 3, 4])
    v.record(FlagsChanged(1, BOX.id, (FlagRow(3, frozenset({"\\Seen"}), 19),)))
    v.record(MessagesExpunged(1, BOX.id, (2,), 20))
    v.record(MessagesExpunged(1, BOX.id, (4,), 21))
    assert v.highestmodseq == 21 and v.reported_highestmodseq == 19
    held = v.take_updates(allow_expunge=False)
    assert [s for s, _r in held.flags] == [3] and v.reported_highestmodseq == 19
    now = v.take_updates(allow_expunge=True)
    assert now.expunged == [4, 2] and now.vanished == [2, 4]
    assert v.reported_highestmodseq == 21
    removed = v.expunge_known([1, 9])
    assert removed.seqs == [1] and removed.uids == [1]


def test_adds_give_exists_and_are_idempotent() -> None:
    """New UIDs above the view append (EXISTS); a repeated event changes nothing."""
    v = view([1, 2])
    v.record(MessagesAdded(1, BOX.id, (row(3), row(4))))
    v.record(MessagesAdded(1, BOX.id, (row(3),)))
    up = v.take_updates(allow_expunge=False)
    assert up.exists == 4 and list(v.uids) == [1, 2, 3, 4]
    v.record(MessagesAdded(1, BOX.id, (row(2), row(4))))
    assert not v.take_updates(allow_expunge=True)


def test_added_then_expunged_before_seen_is_never_reported() -> None:
    """A message that came and went between two looks produces neither EXISTS nor EXPUNGE."""
    v = view([1])
    v.record(MessagesAdded(1, BOX.id, (row(2),)))
    v.record(MessagesExpunged(1, BOX.id, (2,), 30))
    up = v.take_updates(allow_expunge=True)
    assert not up and list(v.uids) == [1]


def test_a_repeated_add_of_a_message_that_came_and_went_stays_out() -> None:
    """Repeats are applied idempotently, also of a message added and expunged between
    two looks (a relay of another node's changes may repeat the add)."""
    v = view([1])
    v.record(MessagesAdded(1, BOX.id, (row(2),)))
    v.record(MessagesExpunged(1, BOX.id, (2,), 30))
    v.record(MessagesAdded(1, BOX.id, (row(2), row(3))))
    up = v.take_updates(allow_expunge=True)
    assert up.exists == 2 and list(v.uids) == [1, 3]


def test_own_expunge_of_unseen_uid_keeps_it_out() -> None:
    """EXPUNGE that removed a UID the view has not heard of yet: its late add is dropped."""
    v = view([1, 2])
    assert v.expunged_now([2, 3]) == [2]
    v.record(MessagesAdded(1, BOX.id, (row(3),)))
    v.record(MessagesExpunged(1, BOX.id, (2, 3), 40))
    assert not v.take_updates(allow_expunge=True)
    assert list(v.uids) == [1]


def test_flag_changes_reported_once() -> None:
    """Flags the session reported itself (STORE) are not repeated; others' are, with
    the sequence number the client knows."""
    v = view([10, 20, 30])
    v.reported([row(20, 50, "\\Seen")])
    v.record(FlagsChanged(1, BOX.id, (row(20, 50, "\\Seen"), row(30, 51, "\\Flagged"))))
    v.record(FlagsChanged(1, 99, (row(10, 52, "\\Deleted"),)))  # another mailbox
    up = v.take_updates(allow_expunge=False)
    assert [(seq, r.uid) for seq, r in up.flags] == [(3, 30)]
    assert v.highestmodseq == 51


def test_resync_flag_is_kept() -> None:
    """A lost backlog marks the view for a reload from the store."""
    v = view([1])
    assert v.record(Resync(1))
    assert v.has_pending


# --- account operations on a real store ------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(tmp_path / "data")
    await st.open()
    await st.add_domain("example.test")
    await st.add_account("alice@example.test", "x")
    await st.add_account("bob@example.test", "x")
    yield st
    await st.close()


async def accounts(store: SqliteStore) -> tuple[AccountMailboxes, AccountMailboxes]:
    alice = await store.get_account("alice@example.test")
    bob = await store.get_account("bob@example.test")
    assert alice is not None and bob is not None
    return AccountMailboxes(store, alice.id), AccountMailboxes(store, bob.id)


async def test_accounts_never_see_each_other(store: SqliteStore) -> None:
    """Whatever name alice sends, she only reaches her own mailboxes."""
    alice, bob = await accounts(store)
    await bob.create("Secret")
    for name in ["Secret", "../bob@example.test/Secret", "/Secret", "*", "%", "Secret\x00"]:
        assert await alice.find(name) is None
    assert {m.name for m in await alice.list_all()} == {
        "INBOX",
        "Drafts",
        "Sent",
        "Junk",
        "Trash",
        "Archive",
    }
    with pytest.raises(NoSuchMailbox):
        await alice.delete("Secret")
    with pytest.raises(NoSuchMailbox):
        await alice.rename("Secret", "Mine")


async def test_create_rename_delete_rules(store: SqliteStore) -> None:
    """CREATE makes parents; INBOX cannot be created or deleted; RENAME onto an existing
    name or into itself is refused."""
    alice, _ = await accounts(store)
    await alice.create("a/b/c")
    assert await alice.find("a/b") is not None
    with pytest.raises(MailboxExists):
        await alice.create("inbox")
    with pytest.raises(MailboxExists):
        await alice.create("a/b")
    with pytest.raises(MailboxNotAllowed):
        await alice.delete("INBOX")
    with pytest.raises(MailboxExists):
        await alice.rename("a", "Sent")
    with pytest.raises(MailboxNotAllowed):
        await alice.rename("a", "a/b/c/d")
    with pytest.raises(InvalidMailboxName):
        await alice.create("../x")
    await alice.rename("a", "z")
    assert await alice.find("z/b/c") is not None


async def test_view_loads_and_follows_store_events(store: SqliteStore) -> None:
    """A view built at SELECT follows appends, flag changes and expunges via the bus."""
    alice, _ = await accounts(store)
    inbox = await alice.get("INBOX")
    data = b"Subject: hi\r\n\r\nbody\r\n"
    first = await alice.append(inbox, NewMessage(data))
    changes = store.bus.subscribe(alice.account_id)
    v = SelectedView(inbox, read_only=False, loading=True)

    async def pump(n: int) -> None:
        for _ in range(n):
            v.record(await anext(changes))

    await v.load(store)
    assert list(v.uids) == [first.uid]
    second = await alice.append(inbox, NewMessage(data))
    await store.set_flags(inbox.id, [first.uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    await store.expunge(inbox.id)
    await pump(3)
    up = v.take_updates(allow_expunge=True)
    assert up.expunged == [1]
    assert list(v.uids) == [second.uid]
    assert up.exists == 1


async def test_append_with_a_header_over_the_limit_stores_nothing(
    store: SqliteStore, tmp_path: Path
) -> None:
    """APPEND parses in a thread while the file is synced; a header block over
    MAX_HEADER_SIZE is refused after both, and its file does not stay behind."""
    alice, _ = await accounts(store)
    inbox = await alice.get("INBOX")
    files_before = sorted(p.name for p in (tmp_path / "data").rglob("*") if p.is_file())
    huge = b"X-Big: " + b"a" * (MAX_HEADER_SIZE + 10) + b"\r\nSubject: s\r\n\r\nbody\r\n"
    with pytest.raises(LimitReached):
        await alice.append(inbox, NewMessage(huge))
    assert (await alice.status(inbox)).messages == 0
    files_after = sorted(p.name for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert files_after == files_before
    ok = await alice.append(inbox, NewMessage(b"Subject: fine\r\n\r\nbody\r\n"))
    assert (await alice.status(inbox)).messages == 1 and ok.uid == 1
