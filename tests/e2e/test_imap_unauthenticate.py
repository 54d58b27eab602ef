"""UNAUTHENTICATE (RFC 8437) and LITERAL- (RFC 7888 §4) over real sockets.

UNAUTHENTICATE pins: advertised once logged in; refused before login; after it the
connection is not authenticated (mailbox commands BAD, AUTH=PLAIN offered again), a
second user can log in on the same connection and sees only their own mail, changes to
the first user's mailboxes are no longer reported, ENABLE starts from nothing, and it
works inside TLS and COMPRESS, which stay on.

LITERAL- pins: with `imap.literal_minus` the server announces LITERAL- (not LITERAL+),
accepts non-synchronising literals up to 4096 octets, answers a larger one with
BAD [TOOBIG] and skips its octets (the next command is read correctly), while
synchronising literals of any allowed size still work.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_compress import _tls, compress
from tests.e2e.test_imap_raw import RawImap, status

MSG = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def append(c: RawImap, data: bytes = MSG) -> list[bytes]:
    return c.cmd(f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data)


def test_unauthenticate_then_another_user(server: RunningServer) -> None:
    c = RawImap(server.port("imap"))
    other = RawImap(server.port("imap"))
    try:
        assert status(c.cmd("UNAUTHENTICATE")).startswith(b"BAD")
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert b"UNAUTHENTICATE" in c.cmd("CAPABILITY")[0].split()
        assert c.cmd("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT"
        assert status(append(c)).startswith(b"OK")
        assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
        assert status(c.cmd("UNAUTHENTICATE")).startswith(b"OK")
        assert status(c.cmd("SELECT INBOX")).startswith(b"BAD")
        assert b"AUTH=PLAIN" in c.cmd("CAPABILITY")[0].split()
        assert status(c.login("bob@example.test", PASSWORD)).startswith(b"OK")
        assert c.cmd("ENABLE UTF8=ACCEPT")[0] == b"* ENABLED UTF8=ACCEPT"  # new again
        lines = c.cmd("SELECT INBOX")
        assert b"* 0 EXISTS" in lines, lines  # bob's INBOX, not alice's
        # alice's new mail reaches nothing of the session that is now bob's
        assert status(other.login("alice@example.test", PASSWORD)).startswith(b"OK")
        assert status(append(other)).startswith(b"OK")
        assert [x for x in c.cmd("NOOP") if b"EXISTS" in x] == []
    finally:
        c.close()
        other.close()


def test_unauthenticate_keeps_tls_and_compression(server: RunningServer) -> None:
    c = _tls(server.port("imaps"))
    try:
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        compress(c)
        assert status(c.cmd("UNAUTHENTICATE")).startswith(b"OK")
        assert status(c.cmd("COMPRESS DEFLATE")).startswith(b"BAD")  # not authenticated
        assert status(c.login("bob@example.test", PASSWORD)).startswith(b"OK")
        assert status(c.cmd("COMPRESS DEFLATE")).startswith(b"NO [COMPRESSIONACTIVE]")
    finally:
        c.close()


def test_literal_minus(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(imap={"literal_minus": True})
    c = RawImap(server.port("imap"))
    try:
        caps = c.cmd("CAPABILITY")[0].split()
        assert b"LITERAL-" in caps and b"LITERAL+" not in caps
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        small = b"Subject: s\r\n\r\n" + b"x" * (4096 - 16) + b"\r\n"
        assert len(small) == 4096
        assert status(append(c, small)).startswith(b"OK")
        big = small + b"y"
        lines = append(c, big)
        assert status(lines).startswith(b"BAD [TOOBIG]"), lines
        assert status(c.cmd("NOOP")).startswith(b"OK")  # the 4097 octets were skipped
        c.n += 1
        c.send(b"t%d APPEND INBOX {%d}\r\n" % (c.n, len(big)))
        assert c.line().startswith(b"+ ")
        c.send(big + b"\r\n")
        assert c.until(b"t%d" % c.n)[-1].startswith(b"t%d OK" % c.n)
        assert b"MESSAGES 2" in c.cmd("STATUS INBOX (MESSAGES)")[0]
    finally:
        c.close()


def test_literal_plus_by_default(server: RunningServer) -> None:
    c = RawImap(server.port("imap"))
    try:
        caps = c.cmd("CAPABILITY")[0].split()
        assert b"LITERAL+" in caps and b"LITERAL-" not in caps
    finally:
        c.close()
