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
