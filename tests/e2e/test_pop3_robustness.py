"""POP3 through the real server against clients that misbehave or count octets: a
slow-loris client, a client that never reads a large RETR, and LIST/RETR octet counts
for a message that arrived by BDAT without a final line ending (RFC 1939 §7)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer, trickle_until_dropped
from tests.e2e.test_pop3 import Raw, deliver, message
from tests.e2e.test_smtp_helpers import RawSmtp
from tests.e2e.test_smtp_security import wait_idle


def test_slow_loris_is_bounded_by_the_idle_timeout(
    server_factory: Callable[..., RunningServer],
) -> None:
    """RFC 1939 §3: the inactivity timer bounds a command, not one read: a client that
    sends a byte every 0.2 s without ever ending a line is closed after the (1 s) idle
    timeout with -ERR."""
    server = server_factory(pop3={"idle_timeout": 1.0})
    raw = Raw(server.port("pop3"))
    assert trickle_until_dropped(raw.send, b"N") < 5
    assert raw.line().startswith(b"-ERR")
    raw.close()


def test_client_that_never_reads_a_retr_is_dropped(
    server_factory: Callable[..., RunningServer],
) -> None:
    """A client that asks for a 5 MB message and never reads it cannot hold the session
    (and the maildrop lock): the blocked write is bounded by the idle timeout, the lock
    is released and the next login works."""
    server = server_factory(pop3={"idle_timeout": 1.0})
    deliver(server, message(1, size=5_000_000))
    sock = socket.create_connection(("127.0.0.1", server.port("pop3")), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.recv(100)
    sock.sendall(b"USER alice@example.test\r\nPASS " + PASSWORD.encode() + b"\r\nRETR 1\r\n")
    wait_idle(server, "pop3", timeout=15)
    sock.close()
    raw = Raw(server.port("pop3"))
    assert raw.cmd(b"USER alice@example.test").startswith(b"+OK")
    assert raw.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    assert raw.cmd(b"QUIT").startswith(b"+OK")
    raw.close()


@pytest.mark.parametrize("body", [b"ends mid-line", b"ends with CRLF\r\n", b"x\r\n.\r\n.."])
def test_list_size_is_what_retr_sends(server: RunningServer, body: bytes) -> None:
    """A message received by BDAT (RFC 3030 §2: the chunk may end mid-line) has LIST and
    STAT sizes equal to the octets RETR sends once the dot-stuffing is removed: the
    stored message always ends with CRLF (RFC 1939 §7, RFC 5322 §2.1)."""
    smtp = RawSmtp(server.port("smtp"))
    for line in (b"EHLO c.test", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<alice@example.test>"):
        assert smtp.cmd(line).startswith(b"250")
    content = b"Subject: bdat\r\n\r\n" + body
    smtp.send(b"BDAT %d LAST\r\n" % len(content) + content)
    assert smtp.reply().startswith(b"250")
    smtp.close()
    raw = Raw(server.port("pop3"))
    raw.cmd(b"USER alice@example.test")
    assert raw.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    size = int(raw.cmd(b"LIST 1").split()[2])
    assert raw.cmd(b"STAT") == b"+OK 1 %d\r\n" % size
    assert raw.cmd(b"RETR 1").startswith(b"+OK")
    lines = [line[1:] if line.startswith(b".") else line for line in raw.multiline()]
    sent = b"".join(lines)
    assert len(sent) == size
    assert sent.endswith(content if content.endswith(b"\r\n") else content + b"\r\n")
    raw.close()
