"""IMAP session rules on the wire: plaintext login policy, AUTHENTICATE PLAIN, hostile
mailbox names, limits, error replies, other sessions' changes, IDLE, ENABLE IMAP4rev2."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator

import pytest

from pillarbox.proto.imap import commands
from pillarbox.server.imap import dispatch, names
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

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


def append(c: RawImap, box: str = "INBOX", data: bytes = MSG, flags: str = "") -> list[bytes]:
    return c.cmd(f'APPEND "{box}" {flags}{{{len(data)}+}}\r\n'.encode() + data)


def test_plaintext_refused_before_tls(server_factory: Callable[..., RunningServer]) -> None:
    """Without TLS (and loopback not trusted) LOGIN and AUTHENTICATE PLAIN are refused and
    CAPABILITY says LOGINDISABLED; after STARTTLS both work."""
    srv = server_factory(auth={"allow_plaintext_loopback": False})
    c = RawImap(srv.port("imap"))
    try:
        caps = c.cmd("CAPABILITY")[0]
        assert b"LOGINDISABLED" in caps and b"STARTTLS" in caps and b"AUTH=PLAIN" not in caps
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"NO [PRIVACYREQUIRED]")
        ir = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode()
        assert status(c.cmd(f"AUTHENTICATE PLAIN {ir}")).startswith(b"NO")
        c.starttls()
        caps = c.cmd("CAPABILITY")[0]
        assert b"LOGINDISABLED" not in caps and b"AUTH=PLAIN" in caps and b"STARTTLS" not in caps
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
    finally:
        c.close()


def test_authenticate_plain(connect: Callable[[], RawImap]) -> None:
    """AUTHENTICATE PLAIN with SASL-IR, with a continuation, cancelled, and failing."""
    c = connect()
    c.n += 1
    c.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert c.line() == b"+ "
    c.send(base64.b64encode(b"\0bob@example.test\0wrong") + b"\r\n")
    assert c.until(b"a1")[-1].startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    c.send(b"a2 AUTHENTICATE PLAIN\r\n")
    assert c.line() == b"+ "
    c.send(b"*\r\n")
    assert c.until(b"a2")[-1].startswith(b"a2 BAD")
    ir = base64.b64encode(b"\0bob@example.test\0" + PASSWORD.encode()).decode()
    assert status(c.cmd(f"AUTHENTICATE PLAIN {ir}")).startswith(b"OK [CAPABILITY")
    assert b"IDLE" in c.cmd("CAPABILITY")[0]


HOSTILE = [
    '"../bob@example.test/INBOX"',
    '"/"',
    '"/etc/passwd"',
    '"%"',
    '"*"',
    '"Secret/.."',
    '"&Jjo"',  # unterminated modified UTF-7
    '"&AGEAYgBj-"',  # ASCII inside a modified UTF-7 run
    '"' + "x" * 5000 + '"',
    '"a//b"',
]


def test_hostile_names_reach_nothing(connect: Callable[[], RawImap]) -> None:
    """No name alice sends selects, creates, reads or changes anything outside her
    account; each gets a tagged NO or BAD and the connection stays usable."""
    bob = logged_in(connect, "bob@example.test")
    assert status(bob.cmd('CREATE "Secret"')).startswith(b"OK")
    append(bob, "Secret")
    alice = logged_in(connect)
    for name in [*HOSTILE, '"Secret"', '"bob@example.test/Secret"']:
        for command in ("SELECT", "EXAMINE", "DELETE", "SUBSCRIBE"):
            s = status(alice.cmd(f"{command} {name}"))
            assert s.startswith((b"NO", b"BAD")), (command, name, s)
        s = status(alice.cmd(f"STATUS {name} (MESSAGES)"))
        assert s.startswith((b"NO", b"BAD"))
        s = status(alice.cmd(f"RENAME {name} Mine"))
        assert s.startswith((b"NO", b"BAD"))
        s = status(append(alice, name.strip('"')))
        assert s.startswith((b"NO", b"BAD"))
    for name in HOSTILE:
        s = status(alice.cmd(f"CREATE {name}"))
        assert s.startswith((b"NO", b"BAD")), (name, s)
    listing = b"\n".join(alice.cmd('LIST "" "*"'))
    assert b"Secret" not in listing
    assert b"Secret" not in b"\n".join(alice.cmd('LIST "../" "*"'))
    assert b"Secret" not in b"\n".join(alice.cmd('LIST "/" "%"'))
    # bob's mailbox is intact
    assert b"MESSAGES 1" in bob.cmd('STATUS "Secret" (MESSAGES)')[0]
    assert status(alice.cmd("NOOP")).startswith(b"OK")


def test_select_errors_have_codes(connect: Callable[[], RawImap]) -> None:
    """RFC 9051 §7.1 codes: NONEXISTENT, ALREADYEXISTS, TRYCREATE, CANNOT."""
    c = logged_in(connect)
    assert status(c.cmd("SELECT Nope")).startswith(b"NO [NONEXISTENT]")
    assert status(c.cmd("CREATE Sent")).startswith(b"NO [ALREADYEXISTS]")
    assert status(c.cmd("CREATE inbox")).startswith(b"NO [ALREADYEXISTS]")
    assert status(c.cmd("DELETE INBOX")).startswith(b"NO [CANNOT]")
    assert status(append(c, "Nope")).startswith(b"NO [TRYCREATE]")
    c.cmd("SELECT INBOX")
    append(c)
    c.cmd("NOOP")
    assert status(c.cmd("COPY 1 Nope")).startswith(b"NO [TRYCREATE]")
    assert status(c.cmd("FETCH 5 FLAGS")).startswith(b"BAD")
    assert status(c.cmd("STORE 1 +FLAGS (\\Bogus)")).startswith(b"BAD")


def test_limits(server_factory: Callable[..., RunningServer]) -> None:
    """Over-long lines, literals above APPENDLIMIT and deep nesting get a clear error and
    the session goes on."""
    srv = server_factory(imap={"max_line_length": 2000, "max_literal_size": 1000})
    c = RawImap(srv.port("imap"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert b"APPENDLIMIT=1000" in c.cmd("CAPABILITY")[0]
        c.send(b"x1 NOOP " + b"a" * 5000 + b"\r\n")
        assert c.line().startswith(b"x1 BAD")
        c.send(b"x2 APPEND INBOX {5000}\r\n")
        assert c.line().startswith(b"x2 NO [TOOBIG]")
        c.send(b"x3 SELECT INBOX\r\n")
        assert c.until(b"x3")[-1].startswith(b"x3 OK")
        deep = "(" * 200 + "ALL" + ")" * 200
        assert status(c.cmd(f"SEARCH {deep}")).startswith(b"BAD")
        assert status(c.cmd("NOOP")).startswith(b"OK")
    finally:
        c.close()


def test_other_sessions_changes_are_reported(connect: Callable[[], RawImap]) -> None:
    """Another session's APPEND, STORE and EXPUNGE reach this one at NOOP; during FETCH
    by sequence number the expunge is held back so numbers do not shift."""
    a = logged_in(connect)
    b = logged_in(connect)
    for _ in range(3):
        append(b)
    a.cmd("SELECT INBOX")
    b.cmd("SELECT INBOX")
    append(b)
    lines = a.cmd("NOOP")
    assert b"* 4 EXISTS" in lines
    b.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)")
    lines = a.cmd("NOOP")
    # (\Recent too: this IMAP4rev1 session selected first, RFC 3501 §2.3.2.)
    assert any(line.startswith(b"* 2 FETCH (FLAGS (\\Flagged \\Recent)") for line in lines), lines
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.cmd("EXPUNGE")
    lines = a.cmd("FETCH 1:4 (UID)")
    assert not any(b"EXPUNGE" in line for line in lines)
    assert sum(1 for line in lines if line.startswith(b"* ")) == 3  # 1 is gone, still numbered
    assert any(line.startswith(b"* 4 FETCH") for line in lines)
    lines = a.cmd("NOOP")
    assert b"* 1 EXPUNGE" in lines
    lines = a.cmd("FETCH 1:* (UID)")
    assert next(line for line in lines if b"FETCH" in line).startswith(b"* 1 FETCH (UID 2)")


def test_idle_pushes_changes(connect: Callable[[], RawImap]) -> None:
    """IDLE (RFC 2177): new mail arrives as an untagged EXISTS without any command."""
    a = logged_in(connect)
    b = logged_in(connect)
    a.cmd("SELECT INBOX")
    a.send(b"i1 IDLE\r\n")
    assert a.line().startswith(b"+ ")
    append(b)
    a.sock.settimeout(20)
    assert a.line() == b"* 1 EXISTS"
    a.send(b"DONE\r\n")
    assert a.until(b"i1")[-1].startswith(b"i1 OK")
    assert status(a.cmd("NOOP")).startswith(b"OK")


def test_enable_rev2_and_misc(connect: Callable[[], RawImap]) -> None:
    """ENABLE IMAP4rev2 switches SEARCH to ESEARCH; ID, NAMESPACE, LIST options,
    STATUS SIZE, MULTIAPPEND, UID EXPUNGE, RENAME INBOX."""
    c = logged_in(connect)
    assert c.cmd("ID NIL")[0].startswith(b'* ID ("name" "Pillarbox"')
    assert c.cmd("NAMESPACE")[0] == b'* NAMESPACE (("" "/")) NIL NIL'
    lines = c.cmd(
        b"APPEND INBOX (\\Seen) {%d+}\r\n%s (\\Deleted) {%d+}\r\n%s"
        % (len(MSG), MSG, len(MSG), MSG)
    )
    assert b"[APPENDUID " in lines[-1] and b" 1:2]" in lines[-1]
    assert c.cmd("ENABLE IMAP4rev2")[0] == b"* ENABLED IMAP4rev2"
    lines = c.cmd('LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES SIZE))')
    assert any(b"\\Sent" in line for line in lines)
    assert not any(b'"INBOX"' in line and b"LIST" in line for line in lines)
    lines = c.cmd('LIST "" "%" RETURN (CHILDREN STATUS (MESSAGES))')
    assert any(line.startswith(b'* STATUS "INBOX" (MESSAGES 2)') for line in lines)
    assert b"SIZE " in c.cmd("STATUS INBOX (SIZE DELETED UNSEEN)")[0]
    lines = c.cmd("SELECT INBOX")
    assert any(line.startswith(b'* LIST () "/" "INBOX"') for line in lines)
    assert not any(b"RECENT" in line for line in lines)
    lines = c.cmd("SEARCH DELETED")
    assert lines[0] == b'* ESEARCH (TAG "%s") ALL 2' % lines[-1].split()[0]
    lines = c.cmd("UID EXPUNGE 1")
    assert b"* 2 EXPUNGE" not in lines and status(lines).startswith(b"OK")
    lines = c.cmd("UID EXPUNGE 2")
    assert b"* 2 EXPUNGE" in lines
    c.cmd("UNSELECT")
    assert status(c.cmd("RENAME INBOX Old")).startswith(b"OK")
    assert b"MESSAGES 0" in c.cmd("STATUS INBOX (MESSAGES)")[0]
    assert b"MESSAGES 1" in c.cmd("STATUS Old (MESSAGES)")[0]


def test_logout_closes(connect: Callable[[], RawImap]) -> None:
    """LOGOUT answers BYE and OK, then the server closes the connection."""
    c = logged_in(connect)
    lines = c.cmd("LOGOUT")
    assert lines[0].startswith(b"* BYE") and status(lines).startswith(b"OK")
    c.sock.settimeout(10)
    with pytest.raises((ConnectionError, socket.timeout, OSError)):
        c.line()


@pytest.mark.parametrize(
    ("utf8", "wire"),
    [("Été/Über", "&AMk-t&AOk-/&ANw-ber"), ("A&B", "A&-B"), ("日本語", "&ZeVnLIqe-")],
)
def test_modified_utf7_round_trip(utf8: str, wire: str) -> None:
    """RFC 3501 §5.1.3 modified UTF-7 in both directions."""
    assert names.encode_mutf7(utf8) == wire
    assert names.decode_mutf7(wire) == utf8


def test_international_names_on_the_wire(connect: Callable[[], RawImap]) -> None:
    """IMAP4rev1 clients see modified UTF-7; after ENABLE UTF8=ACCEPT, UTF-8."""
    c = logged_in(connect)
    assert status(c.cmd('CREATE "&AMk-t&AOk-"')).startswith(b"OK")
    assert any(b'"&AMk-t&AOk-"' in line for line in c.cmd('LIST "" "*"'))
    c.cmd("ENABLE UTF8=ACCEPT")
    lines = c.cmd('LIST "" "*"')
    assert any('"Été"'.encode() in line for line in lines), lines
    assert status(c.cmd('SELECT "Été"'.encode())).startswith(b"OK")


def test_unexpected_error_is_serverbug(
    connect: Callable[[], RawImap],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fault inside a command handler is logged with the connection id and traceback,
    answered NO [SERVERBUG] without the exception text, and the session goes on."""

    async def broken(session: object, cmd: object) -> bytes:
        raise RuntimeError("secret internal detail")

    c = logged_in(connect)
    monkeypatch.setitem(dispatch.HANDLERS, commands.Namespace, broken)
    lines = c.cmd("NAMESPACE")
    assert status(lines).startswith(b"NO [SERVERBUG]")
    assert not any(b"secret" in line for line in lines)
    assert status(c.cmd("NOOP")).startswith(b"OK")
    records = [r for r in caplog.records if "NAMESPACE failed" in r.getMessage()]
    assert records and records[0].exc_info is not None
    assert records[0].getMessage().startswith("imap-")


def test_nul_in_mailbox_name(connect: Callable[[], RawImap]) -> None:
    """A NUL inside a literal mailbox name is refused by the parser (BAD)."""
    c = logged_in(connect)
    assert status(c.cmd(b"SELECT {3+}\r\na\x00b")).startswith(b"BAD")
    assert status(c.cmd(b"CREATE {3+}\r\na\x00b")).startswith(b"BAD")
    assert status(c.cmd("NOOP")).startswith(b"OK")
