"""Hostile and careless clients against the real server (not only the core): oversized
and unterminated literals, disconnects in the middle of APPEND, deep pipelining, and a
client that never reads what it asked for."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.timeout(60)


def _login(port: int) -> RawImap:
    r = RawImap(port)
    assert status(r.login("alice@example.test", PASSWORD)).startswith(b"OK")
    return r


def _messages(port: int, mailbox: str) -> bytes:
    r = _login(port)
    try:
        return r.cmd(f"STATUS {mailbox} (MESSAGES)")[0]
    finally:
        r.close()


def test_oversized_literals_are_refused_before_reading(server: RunningServer) -> None:
    """RFC 9051 §7.1 TOOBIG / RFC 7888 §4: a synchronising literal over the limit gets
    NO [TOOBIG] and no continuation (the session goes on); a non-synchronising one,
    whose bytes are already on their way, ends the connection with BYE [TOOBIG]."""
    r = _login(server.port("imap"))
    try:
        lines = r.cmd("APPEND INBOX {999999999999}")
        assert lines == [b"t2 NO [TOOBIG] Literal too large"]
        assert status(r.cmd("NOOP")).startswith(b"OK")
        r.send(b"t9 APPEND INBOX {999999999+}\r\nFrom: x\r\n")
        assert r.line().startswith(b"* BYE [TOOBIG]")
        with pytest.raises(ConnectionError):
            r.line()
    finally:
        r.close()
    assert _messages(server.port("imap"), "INBOX") == b'* STATUS "INBOX" (MESSAGES 0)'


def test_disconnect_mid_append_leaves_no_message(server: RunningServer) -> None:
    """A client that hangs up inside an APPEND literal (synchronising or LITERAL+) stores
    nothing: no half message ever becomes visible, and the server keeps serving."""
    port = server.port("imap")
    r = _login(port)
    r.send(b"a APPEND INBOX {1000}\r\n")
    assert r.line() == b"+ Ready"
    r.send(b"From: half@example.test\r\nSubject: cut\r\n")
    r.close()
    r = _login(port)
    r.send(b"b APPEND INBOX {1000+}\r\nFrom: half@example.test\r\n")
    r.close()
    r = _login(port)
    r.send(b"c APPEND INBOX (\\Seen) {10}\r\n")  # never sends the literal at all
    assert r.line() == b"+ Ready"
    r.close()
    assert _messages(port, "INBOX") == b'* STATUS "INBOX" (MESSAGES 0)'


def test_thousand_pipelined_commands_answered_in_order(server: RunningServer) -> None:
    """1,000 NOOPs, a SELECT and 1,000 FETCHes sent in one write are each answered, in
    order, with the right tags (RFC 9051 §5.5)."""
    r = _login(server.port("imap"))
    try:
        data = b"From: p@example.test\r\nSubject: p\r\n\r\nx\r\n"
        assert status(r.cmd(b"APPEND INBOX {%d+}\r\n" % len(data) + data)).startswith(b"OK")
        batch = b"".join(b"n%d NOOP\r\n" % i for i in range(1000))
        batch += b"s SELECT INBOX\r\n"
        batch += b"".join(b"f%d FETCH 1 (UID)\r\n" % i for i in range(1000))
        r.send(batch)
        tags = [line.split()[0] for line in r.until(b"f999") if not line.startswith(b"*")]
        expected = [b"n%d" % i for i in range(1000)] + [b"s"] + [b"f%d" % i for i in range(1000)]
        assert tags == expected
    finally:
        r.close()


def test_client_that_never_reads_is_dropped(
    server_factory: Callable[..., RunningServer],
) -> None:
    """A client that pipelines large FETCHes and never reads the answers does not make
    the server buffer them: the session stops reading while its output does not drain
    (so our sends block), and after imap.idle_timeout without progress the server aborts
    the connection instead of holding it (and its buffers) forever."""
    server = server_factory(imap={"idle_timeout": 1.0})
    r = _login(server.port("imap"))
    body = b"From: big@example.test\r\nSubject: big\r\n\r\n" + b"y" * 1_000_000 + b"\r\n"
    assert status(r.cmd(b"APPEND INBOX {%d+}\r\n" % len(body) + body)).startswith(b"OK")
    assert status(r.cmd("SELECT INBOX")).startswith(b"OK")
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    r.sock.settimeout(20)  # without the write timeout, sendall blocks until this fires
    command = b"x FETCH 1 (BODY.PEEK[])\r\n" * 100
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(100_000):
            r.sock.sendall(command)
    r.close()


def test_keywords_are_bounded_with_limit(server: RunningServer) -> None:
    """Issue 16 item 5: APPEND with 2,000 keywords, or a STORE that would give a message
    more than the bound, is refused with NO [LIMIT] (RFC 9051 §7.1) and stores nothing."""
    c = _login(server.port("imap"))
    try:
        many = " ".join(f"$k{i}" for i in range(2000))
        msg = b"Subject: k\r\n\r\nbody\r\n"
        lines = c.cmd(f"APPEND INBOX ({many}) {{{len(msg)}+}}\r\n".encode() + msg)
        assert status(lines).startswith(b"NO [LIMIT]"), lines[-1]
        lines = c.cmd(f"APPEND INBOX ($a $b) {{{len(msg)}+}}\r\n".encode() + msg)
        assert status(lines).startswith(b"OK"), lines
        assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
        some = " ".join(f"$s{i}" for i in range(99))
        assert status(c.cmd(f"STORE 1 +FLAGS.SILENT ({some})")).startswith(b"NO [LIMIT]")
        lines = c.cmd("FETCH 1 (FLAGS)")
        assert b"1 FETCH (FLAGS (\\Recent $a $b))" in b"".join(lines), lines
    finally:
        c.close()


def test_permanentflags_drops_create_keywords_when_mailbox_is_full(
    server: RunningServer,
) -> None:
    """RFC 9051 §7.1: `\\*` in PERMANENTFLAGS says new keywords can be created. Once a
    STORE is refused because the mailbox holds its 1,000 keywords, the session is told
    PERMANENTFLAGS without `\\*` before the tagged NO [LIMIT], and not told it again."""
    c = _login(server.port("imap"))
    try:
        msg = b"Subject: k\r\n\r\nbody\r\n"
        for batch in range(10):
            words = " ".join(f"$k{batch}x{i}" for i in range(100))
            lines = c.cmd(f"APPEND INBOX ({words}) {{{len(msg)}+}}\r\n".encode() + msg)
            assert status(lines).startswith(b"OK"), lines[-1]
        c.cmd(f"APPEND INBOX () {{{len(msg)}+}}\r\n".encode() + msg)
        lines = c.cmd("SELECT INBOX")
        assert any(b"PERMANENTFLAGS (" in x and b"\\*)" in x for x in lines), lines
        lines = c.cmd("STORE 11 +FLAGS ($brandnew)")
        assert status(lines).startswith(b"NO [LIMIT]"), lines[-1]
        told = [x for x in lines if b"PERMANENTFLAGS" in x]
        assert len(told) == 1 and b"\\*" not in told[0], lines
        lines = c.cmd("STORE 11 +FLAGS ($another)")
        assert status(lines).startswith(b"NO [LIMIT]")
        assert not [x for x in lines if b"PERMANENTFLAGS" in x]
        assert status(c.cmd("STORE 11 +FLAGS ($k0x1)")).startswith(b"OK")  # a known one
    finally:
        c.close()


def test_append_bounds_every_header_block(server: RunningServer) -> None:
    """FETCH reads HEADER, HEADER.FIELDS and MIME whole, so APPEND refuses a message
    whose own header, or a part's, is over 1 MiB: NO [LIMIT], nothing stored."""
    c = _login(server.port("imap"))
    fold = b"X-Filler: " + b"\r\n a" * 300_000 + b"\r\n"  # one field of ~1.2 MB
    top = fold + b"Subject: big\r\n\r\nbody\r\n"
    part = (
        b"Subject: nested\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n" + fold + b"\r\nhidden\r\n--b--\r\n"
    )
    fine = b"X-Filler: " + b"\r\n a" * 200_000 + b"\r\nSubject: fine\r\n\r\nbody\r\n"
    try:
        for message in (top, part):
            lines = c.cmd(f"APPEND INBOX {{{len(message)}+}}\r\n".encode() + message)
            assert status(lines).startswith(b"NO [LIMIT]"), lines[-1]
        lines = c.cmd(f"APPEND INBOX {{{len(fine)}+}}\r\n".encode() + fine)
        assert status(lines).startswith(b"OK"), lines[-1]
        assert b"(MESSAGES 1)" in b"".join(c.cmd("STATUS INBOX (MESSAGES)"))
    finally:
        c.close()
