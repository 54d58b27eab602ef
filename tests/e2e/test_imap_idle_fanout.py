"""IDLE fan-out (issue 13, push at scale): one change reaches every idle session, and the
shortcuts that make it cheap keep the RFC rules: \\Recent for exactly one session (RFC
3501 §2.3.2) even when many are woken by the same delivery at once, a recreated mailbox
starting over, and every idle session getting both EXISTS and FETCH FLAGS (RFC 2177)."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.test_imap_conformance_defects import MSG, append, connect, logged_in
from tests.e2e.test_imap_raw import RawImap, status

__all__ = ["connect"]  # the fixture, reused


def _idle(c: RawImap, box: str = "INBOX") -> None:
    assert status(c.cmd(f"SELECT {box}")).startswith(b"OK")
    c.send(b"i1 IDLE\r\n")
    assert c.line().startswith(b"+ ")


def _lines_until(c: RawImap, last: Callable[[bytes], bool]) -> list[bytes]:
    """Untagged lines up to and including the first `last` accepts (socket timeout bounds
    the wait)."""
    got: list[bytes] = []
    while True:
        line = c.line()
        got.append(line)
        if last(line):
            return got


def test_one_delivery_to_many_idle_sessions_is_recent_for_one(
    connect: Callable[[], RawImap],
) -> None:
    """Eight IMAP4rev1 sessions idle on INBOX; one APPEND wakes them all at once. Each
    gets ``* 1 EXISTS`` then its ``* n RECENT``; the message is recent for exactly one
    (RFC 3501 §2.3.2, §7.3.2), and a later flag change reaches all of them."""
    writer = logged_in(connect)
    idlers = [logged_in(connect) for _ in range(8)]
    for c in idlers:
        _idle(c)
    append(writer)
    recents = []
    for c in idlers:
        lines = _lines_until(c, lambda line: line.endswith(b" RECENT"))
        assert lines == [b"* 1 EXISTS", lines[-1]], lines
        recents.append(int(lines[-1].split()[1]))
    assert sorted(recents) == [0] * 7 + [1], recents
    assert status(writer.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(writer.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)")).startswith(b"OK")
    for c, recent in zip(idlers, recents, strict=True):
        flags = b"(\\Flagged \\Recent)" if recent else b"(\\Flagged)"
        [line] = _lines_until(c, lambda line: b"FETCH" in line)
        assert line == b"* 1 FETCH (FLAGS %s UID 1)" % flags, line
        c.send(b"DONE\r\n")
        assert c.until(b"i1")[-1].startswith(b"i1 OK")


def test_a_recreated_mailbox_starts_its_recent_over(connect: Callable[[], RawImap]) -> None:
    """After DELETE and CREATE of the same name, new mail in the new mailbox is recent
    again (its UIDVALIDITY differs, RFC 3501 §2.3.1.1), whatever the old one had taken."""
    writer = logged_in(connect)
    assert status(writer.cmd("CREATE Box")).startswith(b"OK")
    idler = logged_in(connect)
    _idle(idler, "Box")
    for _ in range(3):
        append(writer, box="Box")
    lines = _lines_until(idler, lambda line: line == b"* 3 RECENT")
    assert b"* 3 EXISTS" in lines, lines
    idler.send(b"DONE\r\n")
    assert idler.until(b"i1")[-1].startswith(b"i1 OK")
    assert status(idler.cmd("UNSELECT")).startswith(b"OK")
    assert status(writer.cmd("DELETE Box")).startswith(b"OK")
    assert status(writer.cmd("CREATE Box")).startswith(b"OK")
    _idle(idler, "Box")
    append(writer, MSG, box="Box")
    lines = _lines_until(idler, lambda line: line.endswith(b" RECENT"))
    assert lines == [b"* 1 EXISTS", b"* 1 RECENT"], lines


def test_idle_pushes_follow_each_session_s_enabled_extensions(
    connect: Callable[[], RawImap],
) -> None:
    """Three sessions IDLE on INBOX with different extensions enabled: IMAP4rev1,
    IMAP4rev2 and QRESYNC. Each gets what its own state calls for from the same changes:
    no RECENT for IMAP4rev2 (RFC 9051 dropped \\Recent), MODSEQ in FETCH and VANISHED
    instead of EXPUNGE once QRESYNC is on (RFC 7162 §3.1, §3.2.10), a new keyword
    announced in FLAGS before the FETCH that shows it (RFC 9051 §7.3.5)."""
    writer = logged_in(connect)
    append(writer)
    append(writer)
    assert status(writer.cmd("SELECT INBOX")).startswith(b"OK")  # takes 1 and 2 as recent
    rev1, rev2, qresync = (logged_in(connect) for _ in range(3))
    assert status(rev2.cmd("ENABLE IMAP4rev2")).startswith(b"OK")
    assert status(qresync.cmd("ENABLE QRESYNC")).startswith(b"OK")
    for c in (rev1, rev2, qresync):
        _idle(c)
    assert status(writer.cmd("UNSELECT")).startswith(b"OK")
    append(writer)
    recent = []
    for c in (rev1, qresync):
        lines = _lines_until(c, lambda line: line.endswith(b" RECENT"))
        assert lines[0] == b"* 3 EXISTS" and len(lines) == 2, lines
        recent.append(lines[1])
    assert sorted(recent) == [b"* 0 RECENT", b"* 1 RECENT"]  # RFC 3501 §2.3.2: one session
    assert _lines_until(rev2, lambda line: line.endswith(b" EXISTS")) == [b"* 3 EXISTS"]
    assert status(writer.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(writer.cmd("STORE 1 +FLAGS.SILENT (\\Deleted $Important)")).startswith(b"OK")
    for c in (rev1, rev2, qresync):
        lines = _lines_until(c, lambda line: b" FETCH " in line)
        assert lines[0].startswith(b"* FLAGS (") and b"$Important" in lines[0], lines
        assert lines[-1].startswith(b"* 1 FETCH (FLAGS ("), lines
        assert (b"MODSEQ (" in lines[-1]) == (c is qresync), lines
    assert status(writer.cmd("EXPUNGE")).startswith(b"OK")
    assert _lines_until(rev1, lambda line: b"EXPUNGE" in line) == [b"* 1 EXPUNGE"]
    assert _lines_until(rev2, lambda line: b"EXPUNGE" in line) == [b"* 1 EXPUNGE"]
    assert _lines_until(qresync, lambda line: b"VANISHED" in line) == [b"* VANISHED 1"]
    for c in (rev1, rev2, qresync):
        c.send(b"DONE\r\n")
        assert c.until(b"i1")[-1].startswith(b"i1 OK")
        assert status(c.cmd("NOOP")).startswith(b"OK")
