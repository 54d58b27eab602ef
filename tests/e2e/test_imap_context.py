"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4) and SORT RETURN (SAVE) over real sockets.

Pins: both capabilities are advertised; PARTIAL picks 1-based positions of the result in
mailbox order (SEARCH) or sort order (SORT), echoes the range as sent, answers NIL past
the end, and counts from the end with RFC 9394's negative ranges; malformed PARTIAL (and
PARTIAL with ALL) is BAD. RETURN (UPDATE) keeps the result live: another connection's
APPEND gives ADDTO after the EXISTS, an expunge gives REMOVEFROM before the EXPUNGE, a
flag change (the session's own STORE too) that makes a message stop or start matching
gives REMOVEFROM / ADDTO; SEARCH contexts use position 0, SORT contexts exact positions;
updates arrive during IDLE; CANCELUPDATE ends them (NO for an unknown tag); so does
selecting again; a tag already naming a context is BAD; the sixth context is refused with
``NO [NOUPDATE "tag"]`` while the search itself still answers. SORT RETURN (SAVE) fills
"$" for later commands (all matches, or only what MIN/MAX/PARTIAL return).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

Connect = Callable[[], RawImap]


def message(subject: str) -> bytes:
    return f"From: a@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()


@pytest.fixture
def connect(server: RunningServer) -> Iterator[Connect]:
    """Logged-in connections as alice, closed at the end."""
    opened: list[RawImap] = []

    def make() -> RawImap:
        c = RawImap(server.port("imap"))
        opened.append(c)
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        return c

    yield make
    for c in opened:
        c.close()


def append(c: RawImap, subject: str, flags: str = "") -> int:
    """APPEND to INBOX; the new UID (APPENDUID, RFC 4315)."""
    data = message(subject)
    flag_list = f"({flags}) " if flags else ""
    lines = c.cmd(f"APPEND INBOX {flag_list}{{{len(data)}+}}\r\n".encode() + data)
    assert status(lines).startswith(b"OK"), lines
    m = re.search(rb"APPENDUID \d+ (\d+)", lines[-1])
    assert m is not None, lines
    return int(m.group(1))


def tag(c: RawImap) -> bytes:
    """The tag of the command `c` sent last."""
    return b"t%d" % c.n


def ok(lines: list[bytes]) -> list[bytes]:
    assert status(lines).startswith(b"OK"), lines
    return lines


@pytest.fixture
def mailbox(connect: Connect) -> tuple[RawImap, list[int]]:
    """Alice's INBOX selected, with messages subject m1..m6 (m2 and m5 \\Seen)."""
    c = connect()
    uids = [append(c, f"m{i}", "\\Seen" if i in (2, 5) else "") for i in range(1, 7)]
    ok(c.cmd("SELECT INBOX"))
    return c, uids


def test_capabilities(connect: Connect) -> None:
    caps = set(connect().cmd("CAPABILITY")[0].split())
    assert {b"ESORT", b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"SEARCHRES"} <= caps


def test_partial_search(mailbox: tuple[RawImap, list[int]]) -> None:
    """RFC 5267 §4.4 / RFC 9394 §3.1: positions in mailbox order; the range as sent."""
    c, uids = mailbox
    u = uids
    lines = ok(c.cmd("UID SEARCH RETURN (PARTIAL 1:3) UNSEEN"))  # UNSEEN: m1 m3 m4 m6
    assert lines[0] == b'* ESEARCH (TAG "%s") UID PARTIAL (1:3 %d,%d:%d)' % (
        tag(c),
        u[0],
        u[2],
        u[3],
    )
    lines = ok(c.cmd("SEARCH RETURN (PARTIAL -1:-2 COUNT) UNSEEN"))
    assert lines[0] == b'* ESEARCH (TAG "%s") COUNT 4 PARTIAL (-1:-2 4,6)' % tag(c)
    lines = ok(c.cmd("SEARCH RETURN (PARTIAL 6:2) ALL"))  # 6:2 is 2:6
    assert lines[0] == b'* ESEARCH (TAG "%s") PARTIAL (6:2 2:6)' % tag(c)
    lines = ok(c.cmd("SEARCH RETURN (PARTIAL 4:500) UNSEEN"))  # runs past the end
    assert lines[0] == b'* ESEARCH (TAG "%s") PARTIAL (4:500 6)' % tag(c)
    # RFC 5267 §4.4's A04: a range wholly past the end answers NIL.
    lines = ok(c.cmd("UID SEARCH RETURN (PARTIAL 24000:24500) UNDELETED"))
    assert lines[0] == b'* ESEARCH (TAG "%s") UID PARTIAL (24000:24500 NIL)' % tag(c)
    lines = ok(c.cmd("SEARCH RETURN (CONTEXT COUNT) UNDELETED"))  # CONTEXT is a hint
    assert lines[0] == b'* ESEARCH (TAG "%s") COUNT 6' % tag(c)


def test_partial_sort(mailbox: tuple[RawImap, list[int]]) -> None:
    """PARTIAL counts positions in sort order (RFC 5267 §4.4 under CONTEXT=SORT)."""
    c, _uids = mailbox
    lines = ok(c.cmd("SORT RETURN (PARTIAL 1:2) (REVERSE SUBJECT) UTF-8 ALL"))
    assert lines[0] == b'* ESEARCH (TAG "%s") PARTIAL (1:2 6,5)' % tag(c)
    lines = ok(c.cmd("SORT RETURN (PARTIAL -1:-3 MIN) (REVERSE SUBJECT) UTF-8 ALL"))
    assert lines[0] == b'* ESEARCH (TAG "%s") MIN 6 PARTIAL (-1:-3 3,2,1)' % tag(c)
    lines = ok(c.cmd("SORT RETURN (PARTIAL 7:9) (SUBJECT) UTF-8 ALL"))
    assert lines[0] == b'* ESEARCH (TAG "%s") PARTIAL (7:9 NIL)' % tag(c)


@pytest.mark.parametrize(
    "command",
    [
        "SEARCH RETURN (PARTIAL) ALL",
        "SEARCH RETURN (PARTIAL 0:5) ALL",
        "SEARCH RETURN (PARTIAL 1:*) ALL",
        "SEARCH RETURN (PARTIAL -1:5) ALL",
        "SEARCH RETURN (PARTIAL 1:2 ALL) ALL",
        "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "SORT RETURN (PARTIAL x) (DATE) UTF-8 ALL",
        "SORT RETURN (ALL PARTIAL 1:2) (DATE) UTF-8 ALL",
    ],
)
def test_malformed_partial_is_bad(mailbox: tuple[RawImap, list[int]], command: str) -> None:
    c, _uids = mailbox
    lines = c.cmd(command)
    assert len(lines) == 1 and status(lines).startswith(b"BAD"), lines


def updates(lines: list[bytes], t: bytes) -> list[bytes]:
    return [x for x in lines if x.startswith(b'* ESEARCH (TAG "%s")' % t)]


def test_delivery_gives_addto_after_exists(
    connect: Connect, mailbox: tuple[RawImap, list[int]]
) -> None:
    """RFC 5267 §4.3.3: a new matching message is added (position 0 for a SEARCH), and
    the ADDTO comes after the EXISTS that made its sequence number valid."""
    c, _uids = mailbox
    lines = ok(c.cmd("UID SEARCH RETURN (UPDATE) UNSEEN"))
    uid_ctx = tag(c)
    assert lines[0] == b'* ESEARCH (TAG "%s") UID' % uid_ctx  # no data asked for
    ok(c.cmd("SEARCH RETURN (UPDATE COUNT) UNSEEN"))
    seq_ctx = tag(c)
    other = connect()
    new = append(other, "m7")
    append(other, "seen", "\\Seen")  # matches neither context
    lines = ok(c.cmd("NOOP"))
    exists = lines.index(b"* 8 EXISTS")
    assert updates(lines, uid_ctx) == [b'* ESEARCH (TAG "%s") UID ADDTO (0 %d)' % (uid_ctx, new)]
    assert updates(lines, seq_ctx) == [b'* ESEARCH (TAG "%s") ADDTO (0 7)' % seq_ctx]
    assert all(lines.index(x) > exists for x in updates(lines, uid_ctx) + updates(lines, seq_ctx))
    assert not updates(ok(c.cmd("NOOP")), uid_ctx)  # reported once


def test_expunge_gives_removefrom_before_expunge(
    connect: Connect, mailbox: tuple[RawImap, list[int]]
) -> None:
    """RFC 5267 §4.3.4: REMOVEFROM names the sequence number before the EXPUNGE."""
    c, uids = mailbox
    ok(c.cmd("SEARCH RETURN (UPDATE) UNSEEN"))
    ctx = tag(c)
    ok(c.cmd("UID SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 ALL"))
    sort_ctx = tag(c)
    other = connect()
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd(f"UID STORE {uids[2]} +FLAGS.SILENT (\\Deleted)"))
    ok(other.cmd(f"UID EXPUNGE {uids[2]}"))
    lines = ok(c.cmd("NOOP"))
    removed = updates(lines, ctx)
    assert removed == [b'* ESEARCH (TAG "%s") REMOVEFROM (0 3)' % ctx]
    # m3 is fourth in REVERSE SUBJECT order (m6 m5 m4 m3 m2 m1).
    assert updates(lines, sort_ctx) == [
        b'* ESEARCH (TAG "%s") UID REMOVEFROM (4 %d)' % (sort_ctx, uids[2])
    ]
    assert lines.index(removed[0]) < lines.index(b"* 3 EXPUNGE")
    # The session's own EXPUNGE too.
    ok(c.cmd(f"UID STORE {uids[3]} +FLAGS.SILENT (\\Deleted)"))
    lines = ok(c.cmd("EXPUNGE"))
    gone = [b'* ESEARCH (TAG "%s") REMOVEFROM (0 3)' % ctx]  # m4 is now number 3
    assert updates(lines, ctx) == gone
    assert lines.index(gone[0]) < lines.index(b"* 3 EXPUNGE")


def test_flag_changes(connect: Connect, mailbox: tuple[RawImap, list[int]]) -> None:
    """A message that stops matching is removed, one that starts matching is added —
    whoever changed the flag (RFC 5267 §4.3.2: "metadata such as flags being changed")."""
    c, uids = mailbox
    ok(c.cmd("UID SEARCH RETURN (UPDATE MIN) UNSEEN"))
    ctx = tag(c)
    other = connect()
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd(f"UID STORE {uids[0]} +FLAGS (\\Seen)"))
    lines = ok(c.cmd("NOOP"))
    assert updates(lines, ctx) == [b'* ESEARCH (TAG "%s") UID REMOVEFROM (0 %d)' % (ctx, uids[0])]
    lines = ok(c.cmd(f"UID STORE {uids[1]} -FLAGS.SILENT (\\Seen)"))
    assert updates(lines, ctx) == [b'* ESEARCH (TAG "%s") UID ADDTO (0 %d)' % (ctx, uids[1])]
    ok(other.cmd(f"UID STORE {uids[5]} +FLAGS ($Label)"))  # does not change UNSEEN
    assert not updates(ok(c.cmd("NOOP")), ctx)


def test_sort_context_positions(connect: Connect, mailbox: tuple[RawImap, list[int]]) -> None:
    """A SORT context names exact positions in sort order (RFC 5267 §4.3.3)."""
    c, uids = mailbox
    lines = ok(c.cmd("UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN"))
    ctx = tag(c)
    u = uids
    assert lines[0] == b'* ESEARCH (TAG "%s") UID ALL %d,%d:%d,%d' % (ctx, u[0], u[2], u[3], u[5])
    other = connect()
    m35 = append(other, "m35")  # between m3 and m4: position 3
    m0 = append(other, "m0")  # before m1: position 1
    lines = ok(c.cmd("NOOP"))
    assert updates(lines, ctx) == [b'* ESEARCH (TAG "%s") UID ADDTO (1 %d 4 %d)' % (ctx, m0, m35)]
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd(f"UID STORE {u[3]},{m0} +FLAGS (\\Seen)"))  # m4 at 5, m0 at 1
    lines = ok(c.cmd("NOOP"))
    assert updates(lines, ctx) == [
        b'* ESEARCH (TAG "%s") UID REMOVEFROM (5 %d 1 %d)' % (ctx, u[3], m0)
    ]


def test_update_with_fetch_attributes(connect: Connect, mailbox: tuple[RawImap, list[int]]) -> None:
    """RFC 5465 §7: UPDATE (fetch-att ...) sends a FETCH of a new message that joins,
    after the EXISTS and before the ADDTO; a message that joins by a flag change gets
    no such FETCH."""
    c, uids = mailbox
    ok(c.cmd("UID SEARCH RETURN (UPDATE (BODY.PEEK[HEADER.FIELDS (SUBJECT)])) UNSEEN"))
    ctx = tag(c)
    other = connect()
    new = append(other, "fresh")
    lines = ok(c.cmd("NOOP"))
    fetches = [x for x in lines if b"FETCH" in x and b"HEADER.FIELDS" in x]
    assert len(fetches) == 1 and fetches[0].startswith(b"* 7 FETCH ("), lines
    assert b"UID %d" % new in fetches[0] and b"Subject: fresh" in fetches[0]
    addto = b'* ESEARCH (TAG "%s") UID ADDTO (0 %d)' % (ctx, new)
    assert lines.index(b"* 7 EXISTS") < lines.index(fetches[0]) < lines.index(addto)
    ok(other.cmd("SELECT INBOX"))
    ok(other.cmd(f"UID STORE {uids[1]} -FLAGS (\\Seen)"))
    lines = ok(c.cmd("NOOP"))
    assert updates(lines, ctx) == [b'* ESEARCH (TAG "%s") UID ADDTO (0 %d)' % (ctx, uids[1])]
    assert not [x for x in lines if b"HEADER.FIELDS" in x]


@pytest.mark.parametrize("rev2", [False, True])
def test_idle_gets_updates(
    connect: Connect, mailbox: tuple[RawImap, list[int]], rev2: bool
) -> None:
    """Updates go out while the client idles (RFC 5267 §4.3.2) — also for an IMAP4rev2
    session, whose IDLE updates are otherwise written by the push batch without waking
    the session (which cannot run the context's query)."""
    c, _uids = mailbox
    if rev2:
        c = connect()
        ok(c.cmd("ENABLE IMAP4rev2"))
        ok(c.cmd("SELECT INBOX"))
    ok(c.cmd("UID SEARCH RETURN (UPDATE) UNSEEN"))
    ctx = tag(c)
    c.n += 1
    idle = tag(c)
    c.send(idle + b" IDLE\r\n")
    assert c.line().startswith(b"+")
    new = append(connect(), "during idle")
    c.sock.settimeout(10)
    seen: list[bytes] = []
    try:
        while not seen or not seen[-1].startswith(b"* ESEARCH"):
            seen.append(c.line())  # EXISTS (and RECENT), then the ADDTO
    except TimeoutError:
        pytest.fail(f"no update during IDLE, got {seen!r}")
    assert seen[0] == b"* 7 EXISTS"
    assert seen[-1] == b'* ESEARCH (TAG "%s") UID ADDTO (0 %d)' % (ctx, new)
    c.send(b"DONE\r\n")
    assert status(c.until(idle)).startswith(b"OK")


def test_cancelupdate_and_reselect(connect: Connect, mailbox: tuple[RawImap, list[int]]) -> None:
    """CANCELUPDATE (RFC 5267 §4.3.5) stops the updates; so does leaving the mailbox;
    a tag in use by a context is BAD for another UPDATE (§4.3)."""
    c, _uids = mailbox
    ok(c.cmd("SEARCH RETURN (UPDATE) ALL"))
    first = tag(c)
    ok(c.cmd("SEARCH RETURN (UPDATE) UNSEEN"))
    second = tag(c)
    c.send(first + b" SEARCH RETURN (UPDATE) ALL\r\n")
    assert status(c.until(first)).startswith(b"BAD")
    lines = c.cmd(b'CANCELUPDATE "%s" "nope"' % first)
    assert status(lines).startswith(b"NO")  # unknown tag: nothing cancelled
    ok(c.cmd(b'CANCELUPDATE "%s"' % first))
    other = connect()
    append(other, "after cancel")
    lines = ok(c.cmd("NOOP"))
    assert not updates(lines, first) and len(updates(lines, second)) == 1
    ok(c.cmd("SELECT INBOX"))
    append(other, "after select")
    lines = ok(c.cmd("NOOP"))
    assert b"* 8 EXISTS" in lines and not updates(lines, second)
    assert status(c.cmd(b'CANCELUPDATE "%s"' % second)).startswith(b"NO")


def test_noupdate_past_the_limit(mailbox: tuple[RawImap, list[int]]) -> None:
    """RFC 5267 §4.3.1: a refused UPDATE is an untagged NO [NOUPDATE "tag"]; the other
    options are still answered and the command succeeds. Five contexts are allowed."""
    c, _uids = mailbox
    for _ in range(5):
        assert not [x for x in ok(c.cmd("SEARCH RETURN (UPDATE) ALL")) if b"NOUPDATE" in x]
    lines = ok(c.cmd("SEARCH RETURN (UPDATE COUNT) UNSEEN"))
    assert b'* ESEARCH (TAG "%s") COUNT 4' % tag(c) in lines
    assert b'* NO [NOUPDATE "%s"] Too many updating contexts' % tag(c) in lines
    lines = ok(c.cmd("SORT RETURN (UPDATE) (DATE) UTF-8 ALL"))
    assert any(x.startswith(b'* NO [NOUPDATE "%s"]' % tag(c)) for x in lines)


def fetched_uids(lines: list[bytes]) -> list[int]:
    return [int(m.group(1)) for x in lines if (m := re.search(rb"UID (\d+)", x))]


def test_sort_save(mailbox: tuple[RawImap, list[int]]) -> None:
    """SORT RETURN (SAVE) fills "$" like SEARCH (RFC 5182 §1, §2.4; RFC 9394 §3.2): SAVE
    alone answers no ESEARCH and saves every match; with MIN only the first in sort
    order; with PARTIAL only the messages PARTIAL returns; with COUNT all of them."""
    c, uids = mailbox
    lines = ok(c.cmd("SORT RETURN (SAVE) (REVERSE SUBJECT) UTF-8 UNSEEN"))
    assert len(lines) == 1, lines
    assert fetched_uids(ok(c.cmd("FETCH $ (UID)"))) == [uids[0], uids[2], uids[3], uids[5]]
    lines = ok(c.cmd("UID SORT RETURN (SAVE MIN) (REVERSE SUBJECT) UTF-8 UNSEEN"))
    assert lines[0] == b'* ESEARCH (TAG "%s") UID MIN %d' % (tag(c), uids[5])
    assert fetched_uids(ok(c.cmd("UID FETCH $ (UID)"))) == [uids[5]]
    lines = ok(c.cmd("SORT RETURN (SAVE PARTIAL 2:3) (REVERSE SUBJECT) UTF-8 ALL"))
    assert lines[0] == b'* ESEARCH (TAG "%s") PARTIAL (2:3 5,4)' % tag(c)
    assert fetched_uids(ok(c.cmd("FETCH $ (UID)"))) == [uids[3], uids[4]]
    ok(c.cmd("SORT RETURN (SAVE COUNT MAX) (SUBJECT) UTF-8 SEEN"))
    assert fetched_uids(ok(c.cmd("FETCH $ (UID)"))) == [uids[1], uids[4]]
    # A SORT that fails empties "$" (RFC 5182 §2.1).
    assert b"[BADCHARSET" in status(c.cmd("SORT RETURN (SAVE) (SUBJECT) BOGUS-8 ALL"))
    assert fetched_uids(ok(c.cmd("FETCH $ (UID)"))) == []
