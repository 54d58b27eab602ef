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


def logged_in(connect: Callable[[], RawImap]) -> RawImap:
    c = connect()
    assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
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
