"""Defects a conformance tool and real clients found, one test each, written from the RFC
text (RFC 9051, RFC 3501, RFC 2045, RFC 5258), over raw sockets and Python's imaplib."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

MSG = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def connect(server: RunningServer) -> Iterator[Callable[[], RawImap]]:
    opened: list[RawImap] = []

    def make() -> RawImap:
        c = RawImap(server.port("imap"))
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


def logged_in(connect: Callable[[], RawImap], user: str = "alice@example.test") -> RawImap:
    c = connect()
    assert status(c.login(user, PASSWORD)).startswith(b"OK")
    return c


def append(c: RawImap, data: bytes = MSG, box: str = "INBOX", flags: str = "") -> list[bytes]:
    lines = c.cmd(f'APPEND "{box}" {flags}{{{len(data)}+}}\r\n'.encode() + data)
    assert status(lines).startswith(b"OK"), lines
    return lines


def caps_of(line: bytes) -> set[bytes]:
    m = re.search(rb"CAPABILITY ([^\]]*)", line)
    assert m is not None, line
    return set(m.group(1).split())


# ---------------------------------------------------------------------- CAPABILITY


def test_idle_is_advertised_before_login(server: RunningServer) -> None:
    """imaplib decides from the pre-login CAPABILITY whether the server has IDLE; RFC 9051
    §7.2.2 lets the list change after login, so extensions that do not depend on the
    account (IDLE, MOVE, UIDPLUS, ...) are listed before login, and the OK of LOGIN
    carries the post-login list again."""
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        for cap in ("IDLE", "MOVE", "UIDPLUS", "NAMESPACE", "ESEARCH", "UNSELECT"):
            assert cap in client.capabilities, (cap, client.capabilities)
        typ, data = client.login("alice@example.test", PASSWORD)
        assert typ == "OK"
        assert b"[CAPABILITY " in data[0] and b" IDLE" in data[0], data
        # imaplib's own IDLE works once the server says it has it.
        client.select("INBOX")
        assert "IDLE" in client.capabilities
    finally:
        client.logout()


def test_login_ok_repeats_the_post_login_capabilities(connect: Callable[[], RawImap]) -> None:
    """The LOGIN OK's [CAPABILITY ...] is the list CAPABILITY gives after login, and it
    no longer offers AUTH= or STARTTLS-era items."""
    c = connect()
    pre = caps_of(c.greeting)
    assert b"IDLE" in pre and b"AUTH=PLAIN" in pre
    login = c.login("alice@example.test", PASSWORD)
    after = caps_of(login[-1])
    assert b"IDLE" in after and b"AUTH=PLAIN" not in after
    assert caps_of(c.cmd("CAPABILITY")[0]) == after


# ---------------------------------------------------------------------- FLAGS updates


def _flags_line_index(lines: list[bytes], keyword: bytes) -> int:
    for i, line in enumerate(lines):
        if line.startswith(b"* FLAGS (") and keyword in line:
            return i
    return -1


def _fetch_index(lines: list[bytes], keyword: bytes) -> int:
    for i, line in enumerate(lines):
        if b" FETCH (" in line and keyword in line:
            return i
    return -1


def _assert_announced_before_fetch(lines: list[bytes], keyword: bytes) -> None:
    fetch = _fetch_index(lines, keyword)
    assert fetch >= 0, lines
    flags = _flags_line_index(lines, keyword)
    assert 0 <= flags < fetch, lines
    permanent = [line for line in lines[flags:fetch] if line.startswith(b"* OK [PERMANENTFLAGS (")]
    assert permanent and keyword in permanent[0] and b"\\*" in permanent[0], lines


def test_new_keyword_from_own_store_is_announced(connect: Callable[[], RawImap]) -> None:
    """RFC 9051 §7.3.5: a FETCH carrying a keyword the client has not seen in FLAGS is
    preceded by an updated FLAGS (and PERMANENTFLAGS) response."""
    c = logged_in(connect)
    append(c)
    lines = c.cmd("SELECT INBOX")
    assert _flags_line_index(lines, b"$Important") == -1
    lines = c.cmd("STORE 1 +FLAGS ($Important)")
    assert status(lines).startswith(b"OK")
    _assert_announced_before_fetch(lines, b"$Important")
    # Announced once: the next FETCH of it needs no new FLAGS.
    lines = c.cmd("FETCH 1 FLAGS")
    assert _flags_line_index(lines, b"$Important") == -1
    assert _fetch_index(lines, b"$Important") >= 0


def test_new_keyword_from_another_session_is_announced(
    connect: Callable[[], RawImap],
) -> None:
    """The keyword arrives by another session's STORE: the untagged FETCH the watching
    session gets is preceded by FLAGS naming it."""
    a = logged_in(connect)
    b = logged_in(connect)
    append(a)
    assert status(a.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(b.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(b.cmd("STORE 1 +FLAGS.SILENT ($Later)")).startswith(b"OK")
    lines = a.cmd("NOOP")
    _assert_announced_before_fetch(lines, b"$Later")


def test_new_keyword_on_a_delivered_message_is_announced(
    connect: Callable[[], RawImap],
) -> None:
    """The keyword arrives on a message APPENDed elsewhere: the first FETCH that shows it
    (a plain FETCH FLAGS, or the FLAGS-only fast path of UID FETCH) follows a FLAGS."""
    a = logged_in(connect)
    b = logged_in(connect)
    append(a)
    assert status(a.cmd("SELECT INBOX")).startswith(b"OK")
    append(b, flags="(\\Seen $Invoice) ")
    lines = a.cmd("NOOP") + a.cmd("UID FETCH 1:* (FLAGS)")
    _assert_announced_before_fetch(lines, b"$Invoice")
    append(b, flags="($Receipt) ")
    lines = a.cmd("NOOP") + a.cmd("FETCH 1:* (FLAGS INTERNALDATE)")
    _assert_announced_before_fetch(lines, b"$Receipt")


def test_select_announces_keywords_already_in_the_mailbox(
    connect: Callable[[], RawImap],
) -> None:
    """A keyword already on a message when the mailbox is selected is announced before
    the first FETCH that shows it (here in SELECT's own FLAGS or just before the FETCH)."""
    c = logged_in(connect)
    append(c, flags="($Old) ")
    lines = c.cmd("SELECT INBOX") + c.cmd("FETCH 1 (FLAGS)")
    _assert_announced_before_fetch(lines, b"$Old")


# ---------------------------------------------------------------------- BODY / BINARY

BINARY_PART = b"\x00\x01binary\x00data\xff"
MULTIPART_BINARY = (
    b"From: a@example.test\r\n"
    b"Subject: binary\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="B"\r\n'
    b"\r\n"
    b"--B\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n" + BINARY_PART + b"\r\n"
    b"--B--\r\n"
)


def test_body_of_a_binary_part_that_starts_with_nul(connect: Callable[[], RawImap]) -> None:
    """BODY[1] of a Content-Transfer-Encoding: binary part that starts with NUL is its
    octets, never "": a plain literal cannot carry NUL (RFC 9051 §9 CHAR8 is %x01-ff) and
    BODY[] has no literal8 form (RFC 3516 §4.2 gives it to BINARY[] only), so each NUL
    goes as 0x80 with the size unchanged; BINARY[1] gives the exact octets in literal8."""
    c = logged_in(connect)
    # RFC 3516 §4.4: APPEND takes the NUL-bearing message as literal8.
    lines = c.cmd(b"APPEND INBOX ~{%d+}\r\n" % len(MULTIPART_BINARY) + MULTIPART_BINARY)
    assert status(lines).startswith(b"OK"), lines
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    lines = c.cmd("FETCH 1 (BODY.PEEK[1])")
    assert status(lines).startswith(b"OK"), lines
    shown = BINARY_PART.replace(b"\x00", b"\x80")
    assert lines[0] == b"* 1 FETCH (BODY[1] {%d}\r\n" % len(BINARY_PART) + shown + b")", lines
    lines = c.cmd("FETCH 1 (BODY.PEEK[1]<0.4>)")
    assert lines[0] == b"* 1 FETCH (BODY[1]<0> {4}\r\n" + shown[:4] + b")", lines
    lines = c.cmd("FETCH 1 (BINARY.PEEK[1])")
    assert lines[0].endswith(b"~{%d}\r\n" % len(BINARY_PART) + BINARY_PART + b")"), lines


QP_BODY = (
    b"Soft break with trailing spaces=  \r\n"
    b"joins this line.   \r\n"
    b"Trailing tab\t\r\n"
    b"=41=42=43 =\r\n"
    b"end"
)
QP_DECODED = b"Soft break with trailing spacesjoins this line.\r\nTrailing tab\r\nABC end"
QP_MESSAGE = (
    b"From: a@example.test\r\n"
    b"Subject: qp\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n" + QP_BODY
)


def test_binary_of_quoted_printable_drops_trailing_whitespace(
    connect: Callable[[], RawImap],
) -> None:
    """RFC 2045 §6.7 rule 3: trailing whitespace on an encoded line is deleted when
    decoding, and rule 5: "=" followed by such whitespace is still a soft line break;
    BINARY.SIZE and partial BINARY fetches count the decoded octets (RFC 3516 §4.2)."""
    c = logged_in(connect)
    append(c, QP_MESSAGE)
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    lines = c.cmd("FETCH 1 (BINARY.SIZE[1])")
    assert lines[0] == b"* 1 FETCH (BINARY.SIZE[1] %d)" % len(QP_DECODED), lines
    lines = c.cmd("FETCH 1 (BINARY.PEEK[1])")
    assert lines[0] == b"* 1 FETCH (BINARY[1] {%d}\r\n" % len(QP_DECODED) + QP_DECODED + b")"
    lines = c.cmd("FETCH 1 (BINARY.PEEK[1]<31.20>)")
    assert lines[0] == b"* 1 FETCH (BINARY[1]<31> {20}\r\n" + QP_DECODED[31:51] + b")", lines


# ---------------------------------------------------------------------- ENVELOPE


def test_envelope_of_a_group_holding_only_a_comment(connect: Callable[[], RawImap]) -> None:
    """RFC 9051 §7.5.2: a group is its start marker, its members, its end marker; a
    comment is not a member (RFC 5322 §3.4 group-list may be CFWS alone), so
    ``Cc: group2: (foo) ;`` is just the two markers, never a MISSING_MAILBOX address."""
    c = logged_in(connect)
    append(
        c,
        b"From: a@example.test\r\nTo: group1: b@example.test;\r\n"
        b"Cc: group2: (foo) ;\r\nSubject: groups\r\n\r\nbody\r\n",
    )
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    lines = c.cmd("FETCH 1 ENVELOPE")
    assert b"MISSING" not in lines[0], lines
    assert (
        b'((NIL NIL "group1" NIL)(NIL NIL "b" "example.test")(NIL NIL NIL NIL)) '
        b'((NIL NIL "group2" NIL)(NIL NIL NIL NIL))'
    ) in lines[0], lines


# ---------------------------------------------------------------------- LIST, LSUB


def test_list_pattern_that_is_not_modified_utf7_is_literal(
    connect: Callable[[], RawImap],
) -> None:
    """A LIST pattern with an "&" that does not start valid modified UTF-7 names no
    mailbox, which is an answer, not an error: OK, and the session goes on."""
    c = logged_in(connect)
    lines = c.cmd('LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*')
    assert status(lines).startswith(b"OK"), lines
    assert lines[:-1] == [], lines
    assert status(c.cmd("NOOP")).startswith(b"OK")


def test_list_unknown_return_option_is_bad(connect: Callable[[], RawImap]) -> None:
    """RFC 5258 §3: a return option the server does not know is answered BAD."""
    c = logged_in(connect)
    assert status(c.cmd('LIST "" "*" RETURN (foo)')).startswith(b"BAD")
    assert status(c.cmd('LIST "" "*" RETURN (CHILDREN SUBSCRIBED)')).startswith(b"OK")


def test_childinfo_only_for_a_parent_not_itself_selected(
    connect: Callable[[], RawImap],
) -> None:
    """RFC 5258 §3 RECURSIVEMATCH and §3.5: CHILDINFO ("SUBSCRIBED") goes on a mailbox
    that does not meet the selection criteria itself but has a descendant that does; a
    subscribed parent is listed as itself, without CHILDINFO; and whether the pattern
    also matches the selected child does not matter (§3, RECURSIVEMATCH note 2): with
    "*" Foo is listed with CHILDINFO beside Foo/Bar."""
    c = logged_in(connect)
    for name in ("Foo", "Foo/Bar", "Baz", "Baz/Qux"):
        assert status(c.cmd(f"CREATE {name}")).startswith(b"OK")
    for name in ("Foo/Bar", "Baz", "Baz/Qux"):
        assert status(c.cmd(f"SUBSCRIBE {name}")).startswith(b"OK")
    lines = c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert status(lines).startswith(b"OK"), lines
    foo = [line for line in lines if line.endswith(b'"Foo" ("CHILDINFO" ("SUBSCRIBED"))')]
    assert len(foo) == 1, lines
    baz = [line for line in lines if b'"Baz"' in line]
    assert len(baz) == 1 and b"CHILDINFO" not in baz[0] and b"\\Subscribed" in baz[0], lines
    lines = c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
    assert status(lines).startswith(b"OK"), lines
    childinfo = [line for line in lines if b"CHILDINFO" in line]
    assert len(childinfo) == 1 and b'"Foo" ("CHILDINFO"' in childinfo[0], lines
    assert any(line.endswith(b'"Foo/Bar"') for line in lines), lines


def test_lsub_lists_unsubscribed_parent_as_noselect(connect: Callable[[], RawImap]) -> None:
    """RFC 3501 §6.3.9: when "%" stops at a level whose name is not subscribed but has
    subscribed children, LSUB lists that name with \\Noselect."""
    c = logged_in(connect)
    for name in ("parent", "parent/child", "parent/child/leaf"):
        assert status(c.cmd(f"CREATE {name}")).startswith(b"OK")
    assert status(c.cmd("SUBSCRIBE parent/child/leaf")).startswith(b"OK")
    assert status(c.cmd("CREATE pa")).startswith(b"OK")
    assert status(c.cmd("SUBSCRIBE pa")).startswith(b"OK")
    lines = c.cmd('LSUB "" parent/%')
    assert lines[:-1] == [b'* LSUB (\\Noselect) "/" "parent/child"'], lines
    lines = c.cmd('LSUB "" p%')
    assert lines[:-1] == [b'* LSUB () "/" "pa"', b'* LSUB (\\Noselect) "/" "parent"'], lines
    lines = c.cmd('LSUB "" parent/child/%')
    assert lines[:-1] == [b'* LSUB () "/" "parent/child/leaf"'], lines


# ---------------------------------------------------------------------- SEARCH


def test_search_sequence_set_beyond_the_last_message(connect: Callable[[], RawImap]) -> None:
    """A sequence set in SEARCH beyond the last message matches nothing: OK with an
    empty ESEARCH (RFC 4731 §3.1: ALL is left out when nothing matched)."""
    c = logged_in(connect)
    for _ in range(10):
        append(c)
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    lines = c.cmd("SEARCH RETURN () 1000")
    assert status(lines).startswith(b"OK"), lines
    assert lines[:-1] == [b'* ESEARCH (TAG "%s")' % lines[-1].split()[0]], lines
    lines = c.cmd("SEARCH 9:1000")
    assert lines[:-1] == [b"* SEARCH 9 10"], lines


# ---------------------------------------------------------------------- \Recent (IMAP4rev1)


def _recent(lines: list[bytes]) -> int:
    [n] = [int(line.split()[1]) for line in lines if line.endswith(b" RECENT")]
    return n


def _search(lines: list[bytes]) -> list[int]:
    [line] = [line for line in lines if line.startswith(b"* SEARCH")]
    return [int(n) for n in line.split()[2:]]


def test_recent_goes_to_the_first_session_that_selects(connect: Callable[[], RawImap]) -> None:
    """RFC 3501 §2.3.2: a message is recent for exactly one session, the first to select
    the mailbox after it arrived; SELECT says ``* n RECENT`` (§7.3.2), FETCH FLAGS shows
    \\Recent, SEARCH RECENT/NEW/OLD use it (§6.4.4), STATUS RECENT counts what no session
    took yet (§6.3.10), and EXAMINE takes nothing away (§6.3.2)."""
    writer = logged_in(connect)
    append(writer)
    append(writer, flags="(\\Seen) ")
    lines = writer.cmd("STATUS INBOX (RECENT MESSAGES)")
    assert lines[0] == b'* STATUS "INBOX" (RECENT 2 MESSAGES 2)', lines
    looker = logged_in(connect)
    assert _recent(looker.cmd("EXAMINE INBOX")) == 2
    first = logged_in(connect)
    assert _recent(first.cmd("SELECT INBOX")) == 2
    lines = first.cmd("FETCH 1:2 FLAGS")
    assert lines[:2] == [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent \\Seen))"]
    assert _search(first.cmd("SEARCH RECENT")) == [1, 2]
    assert _search(first.cmd("SEARCH NEW")) == [1]
    assert _search(first.cmd("SEARCH OLD")) == []
    assert writer.cmd("STATUS INBOX (RECENT)")[0] == b'* STATUS "INBOX" (RECENT 0)'
    second = logged_in(connect)
    assert _recent(second.cmd("SELECT INBOX")) == 0
    assert second.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    assert _search(second.cmd("SEARCH OLD")) == [1, 2]
    # A message that arrives while both have INBOX selected is recent for one of them.
    append(writer)
    a = _recent(first.cmd("NOOP"))
    b = _recent(second.cmd("NOOP"))
    assert (a, b) == (3, 0)
    assert first.cmd("FETCH 3 FLAGS")[0] == b"* 3 FETCH (FLAGS (\\Recent))"
    assert second.cmd("FETCH 3 FLAGS")[0] == b"* 3 FETCH (FLAGS ())"


def test_copy_and_append_targets_get_recent(connect: Callable[[], RawImap]) -> None:
    """COPY, MOVE and APPEND add messages that are recent for the next session to select
    the target mailbox (RFC 3501 §6.4.7: the copy gets \\Recent)."""
    c = logged_in(connect)
    assert status(c.cmd("CREATE Target")).startswith(b"OK")
    append(c)
    append(c)
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    assert status(c.cmd("COPY 1 Target")).startswith(b"OK")
    assert status(c.cmd("MOVE 2 Target")).startswith(b"OK")
    append(c, box="Target")
    assert c.cmd("STATUS Target (RECENT)")[0] == b'* STATUS "Target" (RECENT 3)'
    other = logged_in(connect)
    assert _recent(other.cmd("SELECT Target")) == 3
    assert _search(other.cmd("SEARCH RECENT")) == [1, 2, 3]


def test_imap4rev2_sessions_have_no_recent(connect: Callable[[], RawImap]) -> None:
    """RFC 9051 dropped \\Recent: an IMAP4rev2 session gets no RECENT response and no
    \\Recent flag, and takes nothing from the IMAP4rev1 session that selects next."""
    c = logged_in(connect)
    append(c)
    assert status(c.cmd("ENABLE IMAP4rev2")).startswith(b"OK")
    lines = c.cmd("SELECT INBOX")
    assert not [line for line in lines if line.endswith(b" RECENT")], lines
    assert c.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS ())"
    rev1 = logged_in(connect)
    assert _recent(rev1.cmd("SELECT INBOX")) == 1
