"""OBJECTID (RFC 8474) over real sockets.

Pins: OBJECTID is advertised; CREATE's tagged OK carries ``[MAILBOXID (id)]`` (§4.1),
SELECT/EXAMINE send the same code and STATUS answers the same id (§4.3); RENAME keeps it
(§4.2) and a deleted mailbox's id is never given to a new one, not even to the newest
mailbox deleted and created again under the same name; FETCH EMAILID gives every
message its own id and COPY and MOVE keep it (§5.1); SEARCH EMAILID finds the copies of
one message, an unknown id finds nothing, and an objectid with a character outside
ALPHA / DIGIT / "_" / "-" is BAD (§7).

THREADID (§5.2, `model.objectids`): a reply takes its parent's thread whether it names
it in References or only in In-Reply-To, a reply stored before its parent gives the
parent its thread, two replies to a message the account never got share one, an
unrelated message has its own, delivery over SMTP threads like APPEND, COPY and MOVE
keep the id, and SEARCH THREADID finds exactly the thread's messages (§6).
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

ONE = b"Subject: one\r\n\r\nfirst\r\n"
TWO = b"Subject: two\r\n\r\nsecond\r\n"


@pytest.fixture
def client(server: RunningServer) -> Iterator[RawImap]:
    c = RawImap(server.port("imap"))
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    yield c
    c.close()


def _append(c: RawImap, mailbox: str, data: bytes) -> None:
    assert status(c.cmd(f"APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data)).startswith(b"OK")


def _code_id(line: bytes) -> bytes:
    found = re.search(rb"\[MAILBOXID \(([A-Za-z0-9_-]+)\)\]", line)
    assert found is not None, line
    return found.group(1)


def _status_id(c: RawImap, mailbox: str) -> bytes:
    lines = c.cmd(f"STATUS {mailbox} (MAILBOXID MESSAGES)")
    assert status(lines).startswith(b"OK")
    found = re.fullmatch(
        rb"\* STATUS \S+ \(MAILBOXID \(([A-Za-z0-9_-]+)\) MESSAGES \d+\)", lines[0]
    )
    assert found is not None, lines
    return found.group(1)


def _ids(c: RawImap) -> dict[int, tuple[bytes, bytes]]:
    """UID → (EMAILID, THREADID) of every message of the selected mailbox."""
    lines = c.cmd("UID FETCH 1:* (EMAILID THREADID)")
    assert status(lines).startswith(b"OK")
    out = {}
    for line in lines[:-1]:
        found = re.fullmatch(
            rb"\* \d+ FETCH \(UID (\d+) EMAILID \(([A-Za-z0-9_-]{1,255})\)"
            rb" THREADID \((T[A-Za-z0-9_-]{1,254})\)\)",
            line,
        )
        assert found is not None, line
        out[int(found.group(1))] = (found.group(2), found.group(3))
    return out


def _email_ids(c: RawImap) -> dict[int, bytes]:
    return {uid: email for uid, (email, _) in _ids(c).items()}


def _thread_ids(c: RawImap) -> dict[int, bytes]:
    return {uid: thread for uid, (_, thread) in _ids(c).items()}


def _mail(subject: str, message_id: str, **fields: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in fields.items())
    head = f"From: x@other.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
    return (head + extra + "\r\nbody\r\n").encode()


def test_mailboxid_create_select_status_rename(client: RawImap) -> None:
    assert b"OBJECTID" in client.cmd("CAPABILITY")[0].split()
    created = _code_id(client.cmd("CREATE Projects")[-1])
    assert status(client.cmd("CREATE Projects")).startswith(b"NO")
    assert _status_id(client, "Projects") == created
    selected = [line for line in client.cmd("EXAMINE Projects") if b"MAILBOXID" in line]
    assert len(selected) == 1 and selected[0].startswith(b"* OK ")
    assert _code_id(selected[0]) == created
    assert status(client.cmd("CLOSE")).startswith(b"OK")
    assert status(client.cmd("RENAME Projects Archive2026")).startswith(b"OK")
    assert _status_id(client, "Archive2026") == created
    renamed = [line for line in client.cmd("SELECT Archive2026") if b"MAILBOXID" in line]
    assert [_code_id(line) for line in renamed] == [created]
    inbox = _status_id(client, "INBOX")
    assert inbox != created


def test_rename_inbox_keeps_ids(client: RawImap) -> None:
    """RENAME INBOX moves its messages to a new mailbox (RFC 9051 §6.3.6): INBOX keeps its
    MAILBOXID, the new mailbox gets its own, and the messages keep their EMAILIDs."""
    _append(client, "INBOX", ONE)
    inbox = _status_id(client, "INBOX")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    before = _email_ids(client)
    assert status(client.cmd("UNSELECT")).startswith(b"OK")
    assert status(client.cmd("RENAME INBOX Old")).startswith(b"OK")
    assert _status_id(client, "INBOX") == inbox
    assert _status_id(client, "Old") != inbox
    assert status(client.cmd("SELECT Old")).startswith(b"OK")
    assert _email_ids(client) == before


def test_mailboxid_never_reused(client: RawImap) -> None:
    first = _code_id(client.cmd("CREATE Scratch")[-1])
    assert status(client.cmd("DELETE Scratch")).startswith(b"OK")
    # Scratch was the newest mailbox: SQLite alone would give its id out again.
    second = _code_id(client.cmd("CREATE Scratch")[-1])
    assert second != first
    assert status(client.cmd("DELETE Scratch")).startswith(b"OK")
    third = _code_id(client.cmd("CREATE Other")[-1])
    assert third not in (first, second)


def test_emailid_kept_by_copy_and_move(client: RawImap) -> None:
    _append(client, "INBOX", ONE)
    _append(client, "INBOX", TWO)
    assert status(client.cmd("CREATE Kept")).startswith(b"OK")
    assert status(client.cmd("CREATE Moved")).startswith(b"OK")
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    inbox = _email_ids(client)
    assert sorted(inbox) == [1, 2] and inbox[1] != inbox[2]
    assert status(client.cmd("UID COPY 1 Kept")).startswith(b"OK")
    assert status(client.cmd("UID MOVE 1:2 Moved")).startswith(b"OK")
    assert status(client.cmd("SELECT Kept")).startswith(b"OK")
    assert _email_ids(client) == {1: inbox[1]}
    assert status(client.cmd("SELECT Moved")).startswith(b"OK")
    assert _email_ids(client) == {1: inbox[1], 2: inbox[2]}

    lines = client.cmd(b"UID SEARCH EMAILID " + inbox[2])
    assert lines[0] == b"* SEARCH 2" and status(lines).startswith(b"OK")
    lines = client.cmd(b"SEARCH OR EMAILID " + inbox[1] + b" EMAILID " + inbox[2])
    assert lines[0] == b"* SEARCH 1 2"
    assert client.cmd("SEARCH EMAILID M0000000000000000")[0] == b"* SEARCH"
    assert client.cmd("SEARCH EMAILID unknown_id-1")[0] == b"* SEARCH"
    assert status(client.cmd("SEARCH EMAILID M+1")).startswith(b"BAD")


def test_imapclient_reads_ids(server: RunningServer, client: RawImap) -> None:
    _append(client, "INBOX", ONE)
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    expected = _email_ids(client)[1]
    with IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30) as imap:
        imap.login("alice@example.test", PASSWORD)
        assert b"OBJECTID" in imap.capabilities()
        imap.select_folder("INBOX")
        got = imap.fetch([1], ["EMAILID", "THREADID"])
        assert got[1][b"EMAILID"] == (expected,)
        assert got[1][b"THREADID"] == (_thread_ids(client)[1],)
        assert imap.search(["EMAILID", expected.decode()]) == [1]


def test_threadid_follows_references(server: RunningServer, client: RawImap) -> None:
    mails = [
        _mail("Plan", "<p@x.test>"),  # 1: a thread's root
        _mail("Re: Plan", "<r1@x.test>", In_Reply_To="<p@x.test>"),  # 2: In-Reply-To only
        _mail("Re: Plan", "<r2@x.test>", References="<p@x.test> <r1@x.test>"),  # 3
        _mail("Other", "<u@x.test>"),  # 4: unrelated
        _mail("Re: Early", "<c@x.test>", References="<q@x.test>"),  # 5: before its parent
        _mail("Early", "<q@x.test>"),  # 6: the parent, stored after its reply
        _mail("Re: Lost", "<s1@x.test>", References="<lost@x.test>"),  # 7: parent never
        _mail("Re: Lost", "<s2@x.test>", In_Reply_To="(x) <lost@x.test>"),  # 8: arrives
    ]
    for data in mails:
        _append(client, "INBOX", data)
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        msg = _mail("Re: Plan", "<r3@x.test>", References="<p@x.test> <r2@x.test>")
        smtp.sendmail("x@other.test", ["alice@example.test"], msg)  # 9
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    threads = _thread_ids(client)
    assert sorted(threads) == list(range(1, 10))
    plan = threads[1]
    assert threads[2] == threads[3] == threads[9] == plan
    assert threads[5] == threads[6]
    assert threads[7] == threads[8]
    assert len({plan, threads[4], threads[5], threads[7]}) == 4

    lines = client.cmd(b"UID SEARCH THREADID " + plan)
    assert lines[0] == b"* SEARCH 1 2 3 9" and status(lines).startswith(b"OK")
    lines = client.cmd(b"SEARCH THREADID " + threads[5] + b" NOT THREADID " + plan)
    assert lines[0] == b"* SEARCH 5 6"
    assert client.cmd("SEARCH THREADID T0000000000000000")[0] == b"* SEARCH"
    assert client.cmd("SEARCH THREADID unknown_id-1")[0] == b"* SEARCH"
    assert status(client.cmd("SEARCH THREADID T+1")).startswith(b"BAD")

    # RFC 8474 §5.2: COPY and MOVE keep the thread; a later reply in the other mailbox
    # still joins it (threads are per account, not per mailbox).
    assert status(client.cmd("CREATE Kept")).startswith(b"OK")
    assert status(client.cmd("UID COPY 2 Kept")).startswith(b"OK")
    assert status(client.cmd("UID MOVE 3 Kept")).startswith(b"OK")
    _append(client, "Kept", _mail("Re: Plan", "<r4@x.test>", In_Reply_To="<r3@x.test>"))
    assert status(client.cmd("SELECT Kept")).startswith(b"OK")
    assert _thread_ids(client) == {1: plan, 2: plan, 3: plan}
    assert client.cmd(b"SEARCH THREADID " + plan)[0] == b"* SEARCH 1 2 3"


def test_threadid_of_another_account_is_its_own(server: RunningServer, client: RawImap) -> None:
    """Each account threads its own messages: one delivery to two accounts joins, in
    each, the thread of the message that account has (the parent for alice, an older
    ancestor for bob)."""
    _append(client, "INBOX", _mail("Plan", "<root@x.test>"))
    bob = RawImap(server.port("imap"))
    try:
        assert status(bob.login("bob@example.test", PASSWORD)).startswith(b"OK")
        _append(bob, "INBOX", _mail("Bob's", "<bob@x.test>"))
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
            msg = _mail("Re", "<both@x.test>", References="<bob@x.test> <root@x.test>")
            smtp.sendmail("x@other.test", ["alice@example.test", "bob@example.test"], msg)
        assert status(bob.cmd("SELECT INBOX")).startswith(b"OK")
        bobs = _ids(bob)
    finally:
        bob.close()
    assert status(client.cmd("SELECT INBOX")).startswith(b"OK")
    alices = _ids(client)
    assert alices[2][1] == alices[1][1]
    assert bobs[2][1] == bobs[1][1]
    assert alices[1][1] != bobs[1][1]
