"""mbsync and offlineimap sync an account while a CONDSTORE/QRESYNC client works on the
same mailbox (RFC 7162).

Neither isync 1.4.4 nor offlineimap3 speaks CONDSTORE (neither binary nor source
mentions it): they change flags with STORE without UNCHANGEDSINCE and expunge with UID
EXPUNGE (mbsync) or EXPUNGE (offlineimap). The server must still give every such change
a new mod-sequence, so the CONDSTORE client's view stays exact: CHANGEDSINCE m finds
precisely what the sync tool changed, VANISHED (EARLIER) precisely what it expunged,
STORE UNCHANGEDSINCE refuses to overwrite what the tool changed, and a sync that changes
nothing moves no mod-sequence. On the other side the user's Maildir shows what the
CONDSTORE client did. That client is a raw QRESYNC session next to mbsync, and Python's
imaplib (CONDSTORE only) next to offlineimap.
"""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.modseq_client import code_number, fetches, logged_in, ok, untagged, vanished
from tests.e2e.test_imap_clients import _maildir_files, _mbsync, _mbsyncrc, fill
from tests.e2e.test_imap_interop_offlineimap import _files, _rc, _sync
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def clients() -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for c in opened:
        c.close()


def logged_in_clone(port: int, clients: list[RawImap]) -> RawImap:
    """Another session of the same user, closed with the test's."""
    c = logged_in(port)
    clients.append(c)
    return c


def _number(path: Path) -> int:
    """Which test message a Maildir file holds (message(n) has UID n on the server)."""
    m = re.search(rb"Subject: Message number (\d+)\n", path.read_bytes())
    assert m is not None, path
    return int(m.group(1))


def _maildir_flags(files: list[Path]) -> dict[int, str]:
    """Message number -> its file's Maildir flags (the letters after ":2,"): what the
    user's mail reader shows as read, flagged, answered."""
    return {_number(f): f.name.partition(":2,")[2] for f in files}


def _set_maildir_flag(path: Path, flag: str) -> None:
    base, _, flags = path.name.partition(":2,")
    path.rename(path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(set(flags + flag)))}")


def _highest(c: RawImap) -> int:
    """The mailbox's HIGHESTMODSEQ by STATUS (RFC 7162 §3.1.10), asked by a session
    that does not have INBOX selected (RFC 9051 §6.3.11 advises against STATUS of it)."""
    line = ok(c.cmd("STATUS INBOX (HIGHESTMODSEQ)"))[0]
    m = re.search(rb"HIGHESTMODSEQ (\d+)", line)
    assert m is not None, line
    return int(m.group(1))


def _changed_since(c: RawImap, since: int, *, qresync: bool) -> tuple[dict[int, int], list[int]]:
    """UID -> MODSEQ of what changed after `since`, and the UIDs expunged after it."""
    modifier = f"CHANGEDSINCE {since} VANISHED" if qresync else f"CHANGEDSINCE {since}"
    lines = ok(c.cmd(f"UID FETCH 1:* (FLAGS) ({modifier})"))
    changed = {uid: modseq for uid, (_seq, _flags, modseq) in fetches(lines).items()}
    assert all(m is not None and m > since for m in changed.values()), lines
    return {u: m for u, m in changed.items() if m is not None}, vanished(lines, earlier=True)


def test_mbsync_and_a_qresync_client_on_one_mailbox(
    server: RunningServer, tmp_path: Path, clients: list[RawImap]
) -> None:
    """A QRESYNC client stays selected while mbsync syncs twice and once more idle."""
    port = server.port("imap")
    fill(server, 12)  # UIDs 1..12; 3, 6, 9, 12 are \Seen
    rc = _mbsyncrc(tmp_path, server)
    cs = logged_in(port)
    clients.append(cs)
    assert untagged(ok(cs.cmd("ENABLE QRESYNC"))) == [b"* ENABLED QRESYNC"]
    selected = ok(cs.cmd("SELECT INBOX"))
    validity, h0 = code_number(selected, "UIDVALIDITY"), code_number(selected, "HIGHESTMODSEQ")

    _mbsync(rc)  # the first sync only reads: no mod-sequence moves
    assert len(_maildir_files(tmp_path)) == 12
    assert _highest(logged_in_clone(port, clients)) == h0
    assert _changed_since(cs, h0, qresync=True) == ({}, [])

    # The CONDSTORE client works between syncs: a conditional STORE that wins (nothing
    # changed since h0), a flag, an expunge of its own, and a \Deleted it leaves for
    # later (as a "mark as deleted" mail reader does).
    lines = ok(cs.cmd(f"UID STORE 5 (UNCHANGEDSINCE {h0}) +FLAGS (\\Answered)"))
    assert b"MODIFIED" not in lines[-1], lines
    ok(cs.cmd("UID STORE 7 +FLAGS.SILENT (\\Flagged)"))
    ok(cs.cmd("UID STORE 11 +FLAGS.SILENT (\\Deleted)"))
    ok(cs.cmd("UID EXPUNGE 11"))
    ok(cs.cmd("UID STORE 6 +FLAGS.SILENT (\\Deleted)"))
    h1 = _highest(logged_in_clone(port, clients))
    assert h1 > h0

    # The mbsync user, offline: reads 1, 2 and 4, flags 8, deletes 10 and 12.
    files = {_number(f): f for f in _maildir_files(tmp_path)}
    for n in (1, 2, 4):
        _set_maildir_flag(files[n], "S")
    _set_maildir_flag(files[8], "F")
    files[10].unlink()
    files[12].unlink()
    _mbsync(rc)

    # What the mbsync user sees: the CONDSTORE client's flag and expunge came down, and
    # mbsync ("Expunge Both") expunged the message marked \Deleted on either side.
    local = _maildir_flags(_maildir_files(tmp_path))
    assert sorted(local) == [1, 2, 3, 4, 5, 7, 8, 9]
    assert {n for n, f in local.items() if "S" in f} == {1, 2, 3, 4, 9}
    assert {n for n, f in local.items() if "F" in f} == {7, 8}
    assert "R" in local[5]  # \Answered is Maildir "R"

    # What the CONDSTORE client sees, selected all along: unsolicited FETCH with MODSEQ
    # for each message mbsync changed, VANISHED for what it expunged (RFC 7162 §3.2.10).
    lines = ok(cs.cmd("NOOP"))
    pushed = fetches(lines)
    assert set(pushed) == {1, 2, 4, 8}, lines
    assert all(m is not None and m > h1 for _s, _f, m in pushed.values()), lines
    assert b"\\Seen" in pushed[1][1] and b"\\Flagged" in pushed[8][1]
    assert vanished(lines, earlier=False) == [6, 10, 12], lines
    changed, gone = _changed_since(cs, h1, qresync=True)
    assert set(changed) == {1, 2, 4, 8} and gone == [6, 10, 12]
    assert {u: m for u, (_s, _f, m) in pushed.items()} == changed
    h2 = max(changed.values())

    # UNCHANGEDSINCE h1 now protects what mbsync changed and lets the rest through.
    lines = ok(cs.cmd(f"UID STORE 1,3 (UNCHANGEDSINCE {h1}) +FLAGS (\\Draft)"))
    assert re.search(rb"\[MODIFIED 1\]", lines[-1]), lines
    updated = fetches(lines)
    assert set(updated) == {3} and b"\\Draft" in updated[3][1], lines
    h3 = updated[3][2]
    assert h3 is not None and h3 > h2

    # A fresh QRESYNC session that last saw h1 learns exactly the same.
    other = logged_in_clone(port, clients)
    assert untagged(ok(other.cmd("ENABLE QRESYNC"))) == [b"* ENABLED QRESYNC"]
    lines = ok(other.cmd(f"SELECT INBOX (QRESYNC ({validity} {h1}))"))
    assert code_number(lines, "HIGHESTMODSEQ") == h3
    assert vanished(lines, earlier=True) == [6, 10, 12], lines
    assert set(fetches(lines)) == {1, 2, 3, 4, 8}, lines

    # mbsync again: the \\Draft reaches the Maildir; then nothing is left to do, and a
    # sync with nothing to do moves no mod-sequence.
    _mbsync(rc)
    assert "D" in _maildir_flags(_maildir_files(tmp_path))[3]
    _mbsync(rc)
    assert _changed_since(cs, h3, qresync=True) == ({}, [])
    assert _highest(logged_in_clone(port, clients)) == h3


def _imaplib_fetches(data: list[Any]) -> dict[int, tuple[int, frozenset[bytes], int | None]]:
    """imaplib's FETCH data (b'4 (UID 4 FLAGS (\\Seen) MODSEQ (12))') parsed as
    modseq_client.fetches parses the wire lines."""
    lines = [b"* %s FETCH %s" % tuple(d.split(b" ", 1)) for d in data if isinstance(d, bytes)]
    return fetches(lines)


def _imaplib_changed_since(c: imaplib.IMAP4, since: int) -> dict[int, int]:
    typ, data = c.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {since})")
    assert typ == "OK", data
    changed = {u: m for u, (_s, _f, m) in _imaplib_fetches(data).items() if m is not None}
    assert all(m > since for m in changed.values()), data
    return changed


def _imaplib_highest(port: int) -> int:
    """HIGHESTMODSEQ by STATUS from a second imaplib session (not the selected one)."""
    c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        c.login("alice@example.test", PASSWORD)
        typ, data = c.status("INBOX", "(HIGHESTMODSEQ)")
        assert typ == "OK", data
        m = re.search(rb"HIGHESTMODSEQ (\d+)", data[0])
        assert m is not None, data
        return int(m.group(1))
    finally:
        c.logout()


def test_offlineimap_and_a_condstore_client_on_one_mailbox(
    server: RunningServer, tmp_path: Path
) -> None:
    """Python's imaplib as the CONDSTORE client (ENABLE CONDSTORE, no QRESYNC: it hears
    EXPUNGE, not VANISHED) between offlineimap syncs; offlineimap expunges with EXPUNGE."""
    port = server.port("imap")
    fill(server, 8)  # UIDs 1..8; 3 and 6 are \Seen
    rc = _rc(tmp_path, server)
    cs = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        cs.login("alice@example.test", PASSWORD)
        assert cs.enable("CONDSTORE")[0] == "OK"
        assert cs.select("INBOX") == ("OK", [b"8"])
        _name, value = cs.response("HIGHESTMODSEQ")
        h0 = int(value[0])

        _sync(rc)
        inbox = tmp_path / "Mail" / "INBOX"
        assert sorted(_maildir_flags(_files(inbox))) == list(range(1, 9))
        assert _imaplib_changed_since(cs, h0) == {}

        typ, data = cs.uid("STORE", "2", f"(UNCHANGEDSINCE {h0})", "+FLAGS", "(\\Answered)")
        assert typ == "OK" and cs.response("MODIFIED") == ("MODIFIED", [None]), data
        assert cs.uid("STORE", "3", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
        assert cs.uid("STORE", "8", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert cs.expunge() == ("OK", [b"8"])
        h1 = _imaplib_highest(port)

        files = {_number(f): f for f in _files(inbox)}
        _set_maildir_flag(files[4], "S")
        _set_maildir_flag(files[5], "S")
        files[6].unlink()
        _sync(rc)

        # The offlineimap user's Maildir shows the imaplib user's changes.
        local = _maildir_flags(_files(inbox))
        assert sorted(local) == [1, 2, 3, 4, 5, 7]
        assert "R" in local[2] and "F" in local[3]
        assert {n for n, f in local.items() if "S" in f} == {3, 4, 5}

        # The imaplib user hears offlineimap's EXPUNGE and flag changes at NOOP ...
        cs.response("FETCH")  # drop what earlier commands left
        assert cs.noop()[0] == "OK"
        assert cs.response("EXPUNGE") == ("EXPUNGE", [b"6"])
        assert cs.response("VANISHED") == ("VANISHED", [None])  # no QRESYNC here
        pushed = _imaplib_fetches(cs.response("FETCH")[1])
        assert set(pushed) == {4, 5}
        # ... and CHANGEDSINCE h1 finds exactly those, at the MODSEQ NOOP reported.
        changed = _imaplib_changed_since(cs, h1)
        assert changed == {u: m for u, (_s, _f, m) in pushed.items()}
        h2 = max(changed.values())
        assert _imaplib_highest(port) == h2

        typ, data = cs.uid("STORE", "4,7", f"(UNCHANGEDSINCE {h1})", "+FLAGS", "(\\Flagged)")
        assert typ == "OK" and cs.response("MODIFIED") == ("MODIFIED", [b"4"]), data
        assert set(_imaplib_fetches(data)) == {7}, data
        h3 = _imaplib_highest(port)
        assert h3 > h2

        _sync(rc)
        assert "F" in _maildir_flags(_files(inbox))[7]
        assert "F" not in _maildir_flags(_files(inbox))[4]
        _sync(rc)  # nothing to do: no mod-sequence moves
        assert _imaplib_changed_since(cs, h3) == {}
        assert _imaplib_highest(port) == h3
    finally:
        cs.logout()
