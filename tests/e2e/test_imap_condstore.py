"""CONDSTORE (RFC 7162 §3.1) on the wire, exact responses from raw sockets: HIGHESTMODSEQ
at SELECT and in STATUS, MODSEQ in FETCH (asked for, and in every unsolicited FETCH once
CONDSTORE is on), FETCH (CHANGEDSINCE), STORE (UNCHANGEDSINCE) with [MODIFIED], SEARCH
MODSEQ with its ``(MODSEQ n)``, and the commands that enable CONDSTORE implicitly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.modseq_client import (
    append,
    code_number,
    fetches,
    logged_in,
    ok,
    state,
    untagged,
)
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py


@pytest.fixture
def clients(server: RunningServer) -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for c in opened:
        c.close()


def _client(server: RunningServer, clients: list[RawImap]) -> RawImap:
    c = logged_in(server.port("imap"))
    clients.append(c)
    return c


def test_capability_and_enable(server: RunningServer, clients: list[RawImap]) -> None:
    """CONDSTORE and QRESYNC are advertised (RFC 7162 §3.1.1, §3.2.2); ENABLE answers
    with what it turned on, once (RFC 5161 §3.1)."""
    a = _client(server, clients)
    caps = ok(a.cmd("CAPABILITY"))[0].split()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps
    assert untagged(ok(a.cmd("ENABLE CONDSTORE"))) == [b"* ENABLED CONDSTORE"]
    assert untagged(ok(a.cmd("ENABLE CONDSTORE"))) == [b"* ENABLED"]
    assert untagged(ok(a.cmd("ENABLE QRESYNC"))) == [b"* ENABLED QRESYNC"]


def test_select_condstore_reports_highestmodseq(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """SELECT (CONDSTORE) answers ``OK [HIGHESTMODSEQ n]`` (RFC 7162 §3.1.2.1, §3.1.8),
    equal to STATUS HIGHESTMODSEQ (§3.1.7); a plain SELECT before CONDSTORE is on does not;
    every change raises it (§3.1: strictly increasing per mailbox)."""
    a = _client(server, clients)
    b = _client(server, clients)
    for _ in range(3):
        append(b)
    plain = ok(a.cmd("EXAMINE INBOX"))
    assert not any(b"HIGHESTMODSEQ" in line for line in plain)
    lines = ok(a.cmd("SELECT INBOX (CONDSTORE)"))
    high = code_number(lines, "HIGHESTMODSEQ")
    assert b"* OK [HIGHESTMODSEQ %d] Highest" % high in lines
    st = ok(b.cmd("STATUS INBOX (HIGHESTMODSEQ MESSAGES)"))
    assert st[0] == b'* STATUS "INBOX" (HIGHESTMODSEQ %d MESSAGES 3)' % high
    modseqs = [m for _f, m in state(server.port("imap")).values()]
    assert modseqs == sorted(set(modseqs)) and max(modseqs) == high
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)"))
    after = code_number(ok(a.cmd("EXAMINE INBOX")), "HIGHESTMODSEQ")
    assert after > high
    assert state(server.port("imap"))[1][1] == after  # the changed message has the new one


def test_fetch_modseq_enables_condstore_while_selected(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """FETCH MODSEQ is a CONDSTORE-enabling command (RFC 7162 §3.1): issued with a mailbox
    selected, the server announces that mailbox's HIGHESTMODSEQ, and from then on every
    unsolicited FETCH carries MODSEQ (§3.1)."""
    a = _client(server, clients)
    b = _client(server, clients)
    uid = append(b)
    append(b)
    ok(b.cmd("SELECT INBOX"))  # b takes the new mail as \\Recent (RFC 3501 §2.3.2)
    ok(a.cmd("SELECT INBOX"))
    # Without CONDSTORE, another session's change comes without MODSEQ.
    ok(b.cmd("STORE 2 +FLAGS.SILENT (\\Answered)"))
    assert untagged(ok(a.cmd("NOOP"))) == [b"* 2 FETCH (FLAGS (\\Answered) UID 2)"]
    lines = ok(a.cmd("FETCH 1 (MODSEQ)"))
    truth = state(server.port("imap"))
    high = max(m for _f, m in truth.values())
    assert untagged(lines) == [
        b"* OK [HIGHESTMODSEQ %d] Highest" % high,
        b"* 1 FETCH (MODSEQ (%d))" % truth[uid][1],
    ]
    ok(b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)"))
    new = state(server.port("imap"))[uid][1]
    assert new > high
    assert untagged(ok(a.cmd("NOOP"))) == [b"* 1 FETCH (FLAGS (\\Flagged) UID 1 MODSEQ (%d))" % new]


def test_store_unchangedsince_reports_modified(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """RFC 7162 §3.1.3 (its example): ``STORE 7,5,9 (UNCHANGEDSINCE m) +FLAGS.SILENT
    (\\Deleted)`` where 7 and 9 changed after m: only 5 is stored, answered with its new
    MODSEQ even though .SILENT, and the tagged OK says ``[MODIFIED 7,9]``; UID STORE names
    UIDs; UNCHANGEDSINCE 0 always fails."""
    a = _client(server, clients)
    b = _client(server, clients)
    for _ in range(9):
        append(b)
    ok(a.cmd("SELECT INBOX"))
    ok(b.cmd("SELECT INBOX"))
    since = code_number(ok(a.cmd("SELECT INBOX (CONDSTORE)")), "HIGHESTMODSEQ")
    ok(b.cmd("STORE 7,9 +FLAGS.SILENT (\\Seen)"))
    lines = ok(a.cmd(f"STORE 7,5,9 (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Deleted)"))
    truth = state(server.port("imap"))
    assert truth[5][0] == {b"\\Deleted"} and truth[7][0] == {b"\\Seen"}
    # 7 and 9 come after it as the unsolicited news they are for this session.
    assert untagged(lines) == [
        b"* 5 FETCH (MODSEQ (%d))" % truth[5][1],
        b"* 7 FETCH (FLAGS (\\Seen) UID 7 MODSEQ (%d))" % truth[7][1],
        b"* 9 FETCH (FLAGS (\\Seen) UID 9 MODSEQ (%d))" % truth[9][1],
    ]
    assert lines[-1].endswith(b"OK [MODIFIED 7,9] Conditional STORE failed")
    # Not silent: FLAGS and MODSEQ of what was stored (UID STORE: UIDs in MODIFIED).
    lines = ok(a.cmd(f"UID STORE 4,7 (UNCHANGEDSINCE {since}) +FLAGS (\\Flagged)"))
    truth = state(server.port("imap"))
    fetched = [line for line in untagged(lines) if b"FETCH" in line]
    assert fetched == [b"* 4 FETCH (FLAGS (\\Flagged) UID 4 MODSEQ (%d))" % truth[4][1]]
    assert b"[MODIFIED 7]" in lines[-1]
    lines = ok(a.cmd("STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)"))
    assert b"[MODIFIED 1:2]" in lines[-1]
    assert not any(b"FETCH" in line for line in lines)


def test_fetch_changedsince(server: RunningServer, clients: list[RawImap]) -> None:
    """FETCH ... (CHANGEDSINCE m) answers only messages whose MODSEQ is above m, each with
    MODSEQ although not asked for (RFC 7162 §3.1.4.1), for FLAGS-only and full fetches."""
    a = _client(server, clients)
    b = _client(server, clients)
    for _ in range(5):
        append(b)
    ok(b.cmd("SELECT INBOX"))  # b takes the new mail as \\Recent (RFC 3501 §2.3.2)
    since = code_number(ok(a.cmd("SELECT INBOX (CONDSTORE)")), "HIGHESTMODSEQ")
    ok(b.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)"))
    ok(b.cmd("STORE 4 +FLAGS.SILENT (\\Flagged)"))
    ok(a.cmd("NOOP"))
    truth = state(server.port("imap"))
    lines = ok(a.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {since})"))
    assert untagged(lines) == [
        b"* 2 FETCH (FLAGS (\\Flagged) MODSEQ (%d))" % truth[2][1],
        b"* 4 FETCH (FLAGS (\\Flagged) MODSEQ (%d))" % truth[4][1],
    ]
    lines = ok(a.cmd(f"UID FETCH 1:* (RFC822.SIZE) (CHANGEDSINCE {truth[2][1]})"))
    size = len(b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n")
    assert untagged(lines) == [
        b"* 4 FETCH (UID 4 RFC822.SIZE %d MODSEQ (%d))" % (size, truth[4][1])
    ]
    assert untagged(ok(a.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {truth[4][1]})"))) == []


def test_search_modseq(server: RunningServer, clients: list[RawImap]) -> None:
    """SEARCH MODSEQ m finds messages with MODSEQ >= m and ends the result with ``(MODSEQ
    n)``, the highest MODSEQ among them (RFC 7162 §3.1.5, §3.1.6); nothing found, no
    MODSEQ; ESEARCH carries ``MODSEQ n`` too."""
    a = _client(server, clients)
    b = _client(server, clients)
    for _ in range(4):
        append(b)
    ok(a.cmd("SELECT INBOX"))
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("STORE 3 +FLAGS.SILENT (\\Seen)"))
    ok(b.cmd("STORE 2 +FLAGS.SILENT (\\Seen)"))
    truth = state(server.port("imap"))
    m3, m2 = truth[3][1], truth[2][1]
    assert m2 > m3 > max(truth[1][1], truth[4][1])
    lines = ok(a.cmd(f"SEARCH MODSEQ {m3}"))
    assert b"* SEARCH 2 3 (MODSEQ %d)" % m2 in lines
    assert any(line.startswith(b"* OK [HIGHESTMODSEQ ") for line in lines)  # now enabled
    lines = ok(a.cmd(f'SEARCH MODSEQ "/flags/\\\\seen" all {m3 + 1}'))
    assert b"* SEARCH 2 (MODSEQ %d)" % m2 in lines
    assert b"* SEARCH" in ok(a.cmd(f"SEARCH MODSEQ {m2 + 1}"))
    lines = ok(a.cmd(f"UID SEARCH RETURN (ALL COUNT) OR MODSEQ {m2} UID 1"))
    tag = lines[-1].split()[0]
    esearch = [line for line in lines if line.startswith(b"* ESEARCH")]
    assert esearch == [b'* ESEARCH (TAG "%s") UID COUNT 2 ALL 1:2 MODSEQ %d' % (tag, m2)]


def test_implicit_seen_fetch_carries_modseq(server: RunningServer, clients: list[RawImap]) -> None:
    """A body FETCH that sets \\Seen reports FLAGS and, with CONDSTORE on, the new MODSEQ
    (RFC 7162 §3.1: a FETCH with changed flags carries MODSEQ). The IMAP4rev1 session
    that selected the new message read-write holds it as \\Recent (RFC 3501 §2.3.2)."""
    a = _client(server, clients)
    append(a)
    ok(a.cmd("SELECT INBOX (CONDSTORE)"))
    lines = ok(a.cmd("FETCH 1 (BODY[TEXT])"))
    modseq = state(server.port("imap"))[1][1]
    assert untagged(lines) == [
        b"* 1 FETCH (BODY[TEXT] {7}\r\nhello\r\n FLAGS (\\Recent \\Seen) MODSEQ (%d))" % modseq
    ]
    assert fetches([b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (%d))" % modseq])[1][2] == modseq


def test_imapclient_condstore(server: RunningServer) -> None:
    """A real client library (imapclient) sees CONDSTORE work: it reads HIGHESTMODSEQ from
    SELECT (CONDSTORE), gets MODSEQ per message, and FETCH (CHANGEDSINCE) returns only
    the message another session changed."""
    from imapclient import IMAPClient

    port = server.port("imap")
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30)
    other = logged_in(port)
    try:
        c.login("alice@example.test", PASSWORD)
        assert c.has_capability("CONDSTORE") and c.has_capability("QRESYNC")
        for _ in range(3):
            append(other)
        ok(other.cmd("SELECT INBOX"))  # takes the new mail as \\Recent (RFC 3501 §2.3.2)
        info = c.select_folder("INBOX", readonly=True)
        assert b"HIGHESTMODSEQ" not in info
        c.unselect_folder()
        assert c.enable("CONDSTORE") == [b"CONDSTORE"]
        info = c.select_folder("INBOX")
        since = info[b"HIGHESTMODSEQ"]
        modseqs = c.fetch(c.search(), ["MODSEQ"])
        assert sorted(m[b"MODSEQ"][0] for m in modseqs.values()) == [
            m for _f, m in sorted(state(port).values(), key=lambda v: v[1])
        ]
        ok(other.cmd("UID STORE 2 +FLAGS.SILENT (\\Flagged)"))
        changed = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {since}"])
        assert list(changed) == [2]
        assert changed[2][b"FLAGS"] == (b"\\Flagged",)
        assert changed[2][b"MODSEQ"][0] == state(port)[2][1] > since
        c.logout()
    finally:
        other.close()


def test_highestmodseq_stays_below_a_held_back_expunge(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """CONDSTORE enabled by FETCH MODSEQ by sequence number while another session's expunge
    is held back (RFC 9051 §7.5.1): the HIGHESTMODSEQ announced is below that expunge's
    MODSEQ, so a client that keeps it still learns of the expunge when it resynchronises
    (RFC 7162 §3.1.2.1, §3.2), and says so again after the FETCH; the EXPUNGE comes at
    the next NOOP."""
    a = _client(server, clients)
    b = _client(server, clients)
    for _ in range(3):
        append(b)
    ok(a.cmd("SELECT INBOX"))
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)"))
    st = [line for line in ok(b.cmd("STATUS INBOX (HIGHESTMODSEQ)")) if b"STATUS" in line]
    before = int(st[0].rsplit(b" ", 1)[1].rstrip(b")"))
    ok(b.cmd("EXPUNGE"))
    lines = ok(a.cmd("FETCH 2 (MODSEQ)"))
    modseq = state(server.port("imap"))[2][1]
    # RFC 7162 §3.2: after MODSEQs sent while an expunge is held back, HIGHESTMODSEQ again.
    assert untagged(lines) == [
        b"* OK [HIGHESTMODSEQ %d] Highest" % before,
        b"* 2 FETCH (MODSEQ (%d))" % modseq,
        b"* OK [HIGHESTMODSEQ %d] Highest" % before,
    ]
    assert untagged(ok(a.cmd("NOOP"))) == [b"* 1 EXPUNGE"]


def test_list_status_highestmodseq_enables_condstore(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """LIST ... RETURN (STATUS (HIGHESTMODSEQ)) asks for STATUS HIGHESTMODSEQ, a
    CONDSTORE-enabling command (RFC 7162 §3.1, RFC 5819): a later SELECT reports
    HIGHESTMODSEQ without (CONDSTORE)."""
    a = _client(server, clients)
    append(a)
    lines = ok(a.cmd('LIST "" "INBOX" RETURN (STATUS (HIGHESTMODSEQ))'))
    high = [line for line in lines if line.startswith(b'* STATUS "INBOX" (HIGHESTMODSEQ ')]
    assert len(high) == 1, lines
    assert code_number(ok(a.cmd("SELECT INBOX")), "HIGHESTMODSEQ") > 0
