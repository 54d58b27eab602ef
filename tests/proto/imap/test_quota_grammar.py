"""GETQUOTA, GETQUOTAROOT and SETQUOTA grammar (RFC 9208 §4.1, §9).

Pins: the RFC 9208 examples parse (the empty quota root "", a root that is an atom, a
mailbox by literal); SETQUOTA takes a possibly empty list of resource name and number64
pairs, resource names upper-cased; anything else is refused; the commands need an
authenticated state (command-auth) and are refused before login.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State
from pillarbox.proto.imap.parser import ParseError, parse_command

from .driver import new_connection


def test_rfc_9208_examples() -> None:
    # RFC 9208 §4.1.1: C: G0001 GETQUOTA "!partition.sda4"
    assert parse_command(b'G0001 GETQUOTA "!partition.sda4"') == c.GetQuota(
        "G0001", "!partition.sda4"
    )
    assert parse_command(b'a getquota ""') == c.GetQuota("a", "")
    # RFC 9208 §4.1.2: C: G0002 GETQUOTAROOT INBOX
    assert parse_command(b"G0002 GETQUOTAROOT INBOX") == c.GetQuotaRoot("G0002", "INBOX")
    assert parse_command(b"a GETQUOTAROOT {5}\r\nSent/") == c.GetQuotaRoot("a", "Sent/")
    # RFC 9208 §4.1.3: C: S0000 SETQUOTA "User quota" (STORAGE 512)
    assert parse_command(b'S0000 SETQUOTA "User quota" (STORAGE 512)') == c.SetQuota(
        "S0000", "User quota", (("STORAGE", 512),)
    )
    cmd = parse_command(b'a SETQUOTA "" (storage 9223372036854775807 Message 0)')
    assert cmd == c.SetQuota("a", "", (("STORAGE", 2**63 - 1), ("MESSAGE", 0)))
    assert parse_command(b'a SETQUOTA "" ()') == c.SetQuota("a", "", ())


@pytest.mark.parametrize(
    "wire",
    [
        b"a GETQUOTA",
        b'a GETQUOTA "" x',
        b"a GETQUOTAROOT",
        b'a SETQUOTA ""',
        b'a SETQUOTA "" (STORAGE)',
        b'a SETQUOTA "" (STORAGE 9223372036854775808)',  # beyond number64
        b'a SETQUOTA "" (STORAGE -1)',
        b'a SETQUOTA "" (STORAGE 1 )',
        b'a SETQUOTA "" ( STORAGE 1)',
        b'a SETQUOTA "" (STORAGE 1',
        b'a SETQUOTA "" STORAGE 1',
    ],
)
def test_refused(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(wire)


@pytest.mark.parametrize("line", [b'a GETQUOTA ""', b"a GETQUOTAROOT INBOX", b'a SETQUOTA "" ()'])
def test_not_before_login(line: bytes) -> None:
    conn = new_connection(state=State.NOT_AUTHENTICATED)
    conn.receive_data(line + b"\r\n")
    with pytest.raises(RemoteProtocolError):
        conn.next_event()


@pytest.mark.parametrize("state", [State.AUTHENTICATED, State.SELECTED])
def test_in_authenticated_and_selected_states(state: State) -> None:
    conn = new_connection(state=state)
    conn.receive_data(b"a GETQUOTAROOT INBOX\r\n")
    assert conn.next_event() == c.GetQuotaRoot("a", "INBOX")
