"""The selected-mailbox service on a real SQLite store: FETCH sections come back as their
exact bytes (ranges, HEADER.FIELDS, BINARY, partials) whatever the read-ahead grouping;
\\Seen is set by non-PEEK fetches only in read-write sessions; MULTIAPPEND is all or
nothing; SEARCH sees only what the client knows."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from pillarbox.model import FlagMode, SearchAnd, SearchSequence, SearchText, SeqRange, SequenceSet
from pillarbox.services import fetching
from pillarbox.services.errors import OverQuota
from pillarbox.services.fetching import WHOLE_MESSAGE, FetchedMessage, Section, UnknownEncoding
from pillarbox.services.mailbox import AccountMailboxes, NewMessage
from pillarbox.services.selected import SelectedMailbox
from pillarbox.store.sqlite import SqliteStore

PAYLOAD = bytes(range(256)) * 3
MULTI = (
    b"From: Alice <alice@example.test>\r\n"
    b"Subject: Report\r\n"
    b"X-Custom: one\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Quarterly numbers attached, platypus.\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") + b"--XX\r\n"
    b"Content-Type: application/x-odd\r\n"
    b"Content-Transfer-Encoding: x-unknown\r\n"
    b"\r\n"
    b"????\r\n"
    b"--XX--\r\n"
)
PLAIN = b"From: Carol <carol@example.test>\r\nSubject: Lunch\r\n\r\nShall we meet at noon?\r\n"
HEAD, _, TEXT = MULTI.partition(b"\r\n\r\n")
HEAD += b"\r\n\r\n"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    st = SqliteStore(tmp_path / "data")
    await st.open()
    await st.add_domain("example.test")
    await st.add_account("alice@example.test", "x")
    yield st
    await st.close()


async def mailboxes(store: SqliteStore) -> AccountMailboxes:
    account = await store.get_account("alice@example.test")
    assert account is not None
    return AccountMailboxes(store, account.id)


async def opened(store: SqliteStore, *, read_only: bool = False) -> SelectedMailbox:
    mbx = await mailboxes(store)
    await mbx.append_all(await mbx.get("INBOX"), [NewMessage(MULTI), NewMessage(PLAIN)])
    selected = SelectedMailbox(store, await mbx.get("INBOX"), read_only=read_only)
    await selected.open()
    return selected


async def fetch_all(
    selected: SelectedMailbox, sections: list[Section], *, set_seen: bool = False
) -> list[FetchedMessage]:
    out: list[FetchedMessage] = []
    async for batch in selected.fetch([1, 2], sections, set_seen=set_seen):
        out.extend(batch)
    return out


SECTIONS: list[tuple[Section, bytes, bytes]] = [
    (WHOLE_MESSAGE, MULTI, PLAIN),
    (Section(kind="HEADER"), HEAD, PLAIN.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"),
    (Section(kind="TEXT"), TEXT, b"Shall we meet at noon?\r\n"),
    (Section(kind="TEXT", partial=(6, 9)), TEXT[6:15], b"we meet a"),
    (Section(partial=(5, 20)), MULTI[5:25], PLAIN[5:25]),
    (Section(partial=(10**6, 5)), b"", b""),
    (Section((1,)), b"Quarterly numbers attached, platypus.", b"Shall we meet at noon?\r\n"),
    (Section((2,), decode=True), PAYLOAD, b""),
    (Section((2,), partial=(3, 4), decode=True), PAYLOAD[3:7], b""),
    (
        Section((2,), "MIME"),
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        b"",
    ),
    (
        Section(kind="HEADER.FIELDS", fields=("subject", "X-CUSTOM")),
        b"Subject: Report\r\nX-Custom: one\r\n\r\n",
        b"Subject: Lunch\r\n\r\n",
    ),
    (
        Section(kind="HEADER.FIELDS.NOT", fields=("Content-Type", "MIME-Version", "From")),
        b"Subject: Report\r\nX-Custom: one\r\n\r\n",
        b"Subject: Lunch\r\n\r\n",
    ),
    (Section((9,)), b"", b""),
]


@pytest.mark.parametrize("read_ahead", [1, 1024 * 1024])
async def test_sections_are_exact_bytes(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch, read_ahead: int
) -> None:
    """Every section of both messages, all in one fetch, equals the expected slice of the
    stored message, whether the two messages are read in one group or one each."""
    monkeypatch.setattr(fetching, "READ_AHEAD", read_ahead)
    selected = await opened(store)
    got = await fetch_all(selected, [s for s, _, _ in SECTIONS])
    assert [m.info.uid for m in got] == [1, 2]
    for section, multi, plain in SECTIONS:
        assert got[0].sections[section] == multi, section
        assert got[1].sections[section] == plain, section
    assert not any(m.flags_changed for m in got)


async def test_whole_messages_and_rows_only(store: SqliteStore) -> None:
    """A fetch of whole messages only, and a fetch that reads no bytes at all."""
    selected = await opened(store)
    got = await fetch_all(selected, [WHOLE_MESSAGE])
    assert [m.sections[WHOLE_MESSAGE] for m in got] == [MULTI, PLAIN]
    rows = await fetch_all(selected, [])
    assert [(m.info.uid, m.info.size, m.sections) for m in rows] == [
        (1, len(MULTI), {}),
        (2, len(PLAIN), {}),
    ]


async def test_unknown_transfer_encoding(store: SqliteStore) -> None:
    """BINARY of a part in an encoding we cannot undo is refused (RFC 3516 §4.3)."""
    selected = await opened(store)
    with pytest.raises(UnknownEncoding):
        await fetch_all(selected, [Section((3,), decode=True)])


@pytest.mark.parametrize("read_only", [False, True])
async def test_seen_only_when_read_write(store: SqliteStore, read_only: bool) -> None:
    """A non-PEEK fetch sets \\Seen and says so, once; never in a read-only session."""
    selected = await opened(store, read_only=read_only)
    first = await fetch_all(selected, [Section(kind="TEXT")], set_seen=True)
    assert [("\\Seen" in m.flags, m.flags_changed) for m in first] == [(not read_only,) * 2] * 2
    again = await fetch_all(selected, [Section(kind="TEXT")], set_seen=True)
    assert not any(m.flags_changed for m in again)


async def test_multiappend_is_all_or_nothing(store: SqliteStore) -> None:
    """A MULTIAPPEND whose second message fails (quota) leaves no message behind."""
    mbx = await mailboxes(store)
    inbox = await mbx.get("INBOX")
    await store.set_quota("alice@example.test", len(PLAIN) + 10)
    with pytest.raises(OverQuota):
        await mbx.append_all(inbox, [NewMessage(PLAIN), NewMessage(PLAIN)])
    assert await store.uids(inbox.id) == []
    results = await mbx.append_all(inbox, [NewMessage(PLAIN, frozenset({"\\Seen"}))])
    assert [r.uid for r in results] == [2]  # uid 1 is not reused; the failed one took none


async def test_search_resolves_sets_and_hides_unknown(store: SqliteStore) -> None:
    """SEARCH by sequence number and text runs as one store query; a message that
    arrived after the view was loaded is not reported until the client knows it."""
    selected = await opened(store)
    mbx = await mailboxes(store)
    await mbx.append(selected.mailbox, NewMessage(PLAIN))  # uid 3: not in the view yet
    key = SearchAnd((SearchSequence(SequenceSet((SeqRange(1, None),))), SearchText("noon")))
    assert await selected.search(key, []) == [2]
    assert await selected.search(SearchSequence(SequenceSet((), saved=True)), [2, 3]) == [2]


async def test_a_message_expunged_between_its_row_and_its_bytes_is_left_out(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session expunges message 1 after the FETCH read its row but before it read
    its bytes: message 1 gets no answer (as if its row had been gone already) and message
    2 still gets its section; the command does not fail (it did: NO "Message is gone")."""
    selected = await opened(store)
    mailbox_id = selected.view.mailbox.id
    read_messages = store.read_messages

    async def expunge_first(
        mailbox: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        # The other session, in between: STORE +FLAGS \Deleted, UID EXPUNGE 1.
        await store.set_flags(mailbox_id, [1], frozenset({"\\Deleted"}), FlagMode.ADD)
        assert await store.expunge(mailbox_id, [1]) == [1]
        return await read_messages(mailbox, ranges)

    monkeypatch.setattr(store, "read_messages", expunge_first)
    got = await fetch_all(selected, [Section(kind="TEXT")])
    assert [(m.info.uid, m.sections[Section(kind="TEXT")]) for m in got] == [
        (2, b"Shall we meet at noon?\r\n")
    ]
