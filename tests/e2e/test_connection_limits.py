"""Limits by kind (issue 16 item 2), over real connections from distinct loopback
addresses: a deadline to log in, a cap on connections waiting for login that a flood
from some addresses cannot use to shut out a newcomer from elsewhere, and a cap on one
account's sessions from one address (IMAP and POP3) that leaves other accounts and
addresses alone."""

from __future__ import annotations

import smtplib
import socket
import time
from collections.abc import Callable

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer


class Conn:
    """A line-oriented client connection from a chosen source address."""

    def __init__(self, server: RunningServer, listener: str, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", server.port(listener)), timeout=30, source_address=(source, 0)
        )
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        return self.file.readline()

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def until(self, prefix: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if not line or line.startswith(prefix):
                return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def imap_login(c: Conn, user: str = "alice@example.test") -> list[bytes]:
    c.send(f'a LOGIN "{user}" "{PASSWORD}"')
    return c.until(b"a ")


def test_a_connection_that_does_not_log_in_in_time_is_closed(
    server_factory: Callable[..., RunningServer],
) -> None:
    srv = server_factory(limits={"login_timeout": 1.0})
    started = time.monotonic()
    for listener, bye in (
        ("imap", b"* BYE Login timeout\r\n"),
        ("pop3", b"-ERR Login timeout\r\n"),
    ):
        c = Conn(srv, listener)
        assert c.line() == bye
        assert c.line() == b""  # closed
        c.close()
    assert time.monotonic() - started < 20
    # One that logs in is not held to the deadline.
    c = Conn(srv, "imap")
    assert imap_login(c)[-1].startswith(b"a OK")
    c.sock.settimeout(2.5)
    c.send("b NOOP")
    assert c.until(b"b ")[-1].startswith(b"b OK")
    c.close()


def test_a_flood_of_waiting_connections_does_not_shut_out_a_newcomer(
    server_factory: Callable[..., RunningServer],
) -> None:
    srv = server_factory(limits={"max_unauthenticated": 6, "login_timeout": 300.0})
    flood = [Conn(srv, "imap", f"127.0.7.{1 + n % 3}") for n in range(6)]
    newcomer = Conn(srv, "imap", "127.0.8.1")
    assert newcomer.greeting.startswith(b"* OK")
    assert imap_login(newcomer)[-1].startswith(b"a OK")
    # Room was made by closing the oldest waiting connection of a flooding address.
    assert flood[0].line() == b"* BYE [UNAVAILABLE] Too many connections\r\n"
    assert flood[0].line() == b""
    # The flood keeps coming: it closes its own, never the newcomer's logged-in session.
    more = [Conn(srv, "imap", "127.0.7.1") for _ in range(6)]
    newcomer.send("b NOOP")
    assert newcomer.until(b"b ")[-1].startswith(b"b OK")
    for c in flood + more + [newcomer]:
        c.close()


def test_one_account_s_sessions_from_one_address_are_capped(
    server_factory: Callable[..., RunningServer],
) -> None:
    srv = server_factory(limits={"max_connections_per_account": 2})
    held = [Conn(srv, "imap", "127.0.9.1") for _ in range(2)]
    for c in held:
        assert imap_login(c)[-1].startswith(b"a OK")
    third = Conn(srv, "imap", "127.0.9.1")
    lines = imap_login(third)
    assert lines[0].startswith(b"* BYE [UNAVAILABLE] Maximum number of connections"), lines
    assert lines[-1].startswith(b"a NO [UNAVAILABLE]"), lines
    assert third.line() == b""  # closed
    pop = Conn(srv, "pop3", "127.0.9.1")
    pop.send("USER alice@example.test")
    assert pop.line().startswith(b"+OK")
    pop.send(f"PASS {PASSWORD}")
    assert pop.line().startswith(b"-ERR [IN-USE] Maximum number of connections")
    # Another account, and the same account from another address, are not affected.
    bob = Conn(srv, "imap", "127.0.9.1")
    assert imap_login(bob, "bob@example.test")[-1].startswith(b"a OK")
    elsewhere = Conn(srv, "imap", "127.0.9.2")
    assert imap_login(elsewhere)[-1].startswith(b"a OK")
    # A session that ends gives its place back.
    held[0].send("z LOGOUT")
    held[0].until(b"z ")
    again = Conn(srv, "imap", "127.0.9.1")
    deadline = time.monotonic() + 10
    while not imap_login(again)[-1].startswith(b"a OK"):  # until the logout is processed
        assert time.monotonic() < deadline
        again.close()
        again = Conn(srv, "imap", "127.0.9.1")
    for c in [*held, third, pop, bob, elsewhere, again]:
        c.close()


@pytest.mark.parametrize("listener", ["imap", "pop3"])
def test_logged_in_sessions_do_not_count_against_the_waiting_cap(
    server_factory: Callable[..., RunningServer], listener: str
) -> None:
    """Sessions that logged in do not count against max_unauthenticated: with a cap of
    1, logged-in sessions beside one waiting connection are all kept."""
    srv = server_factory(limits={"max_unauthenticated": 1})
    logged = []
    for n, user in enumerate(("alice@example.test", "bob@example.test", "carol@other.test")):
        c = Conn(srv, listener, f"127.0.10.{n + 1}")
        if listener == "imap":
            assert imap_login(c, user)[-1].startswith(b"a OK")
        else:
            c.send(f"USER {user}")
            c.line()
            c.send(f"PASS {PASSWORD}")
            assert c.line().startswith(b"+OK")
        logged.append(c)
    waiting = Conn(srv, listener, "127.0.10.9")
    assert waiting.greeting.startswith(b"* OK" if listener == "imap" else b"+OK")
    for c in logged:
        c.send("b NOOP" if listener == "imap" else "NOOP")
        reply = c.until(b"b ")[-1] if listener == "imap" else c.line()
        assert b"OK" in reply
    for c in [*logged, waiting]:
        c.close()


def test_submission_must_authenticate_in_time_too(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Submission has the pre-login deadline (every client AUTHs first): an idle
    connection gets a 421 naming the server; one that authenticated is not held to it.
    MX (port 25 kind) keeps its RFC 5321 timeouts and is not closed."""
    srv = server_factory(limits={"login_timeout": 1.0})
    idle = Conn(srv, "submission")
    assert idle.greeting.startswith(b"220 ")
    assert idle.line() == b"421 4.4.2 mail.example.test Login timeout, closing connection\r\n"
    assert idle.line() == b""
    idle.close()
    mx = Conn(srv, "smtp")
    authed = smtplib.SMTP("127.0.0.1", srv.port("submission"), "client.test", timeout=30)
    authed.login("alice@example.test", PASSWORD)  # plain text is allowed from loopback
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # past the login deadline, still served
        assert authed.noop()[0] == 250
        mx.send("NOOP")
        assert mx.line().startswith(b"250")
    authed.quit()
    mx.close()
