"""UNAUTHENTICATE in the sans-I/O core (RFC 8437).

Pins: it parses with no arguments in the authenticated and selected states and is
refused before login; `unauthenticated()` returns the core to NOT_AUTHENTICATED (LOGIN
accepted again, SELECT refused) and forgets ENABLEd syntax (UTF-8 quoted strings).
"""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State

from .driver import new_connection


def test_unauthenticate_transition() -> None:
    conn = new_connection(state=State.SELECTED, utf8=True)
    conn.receive_data(b"a UNAUTHENTICATE\r\n")
    assert conn.next_event() == c.Unauthenticate("a")
    conn.unauthenticated()
    assert conn.state is State.NOT_AUTHENTICATED and not conn.utf8
    assert not conn.enabled_extensions
    conn.receive_data(b"b SELECT INBOX\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint == b"b BAD Not authenticated\r\n"
    conn.receive_data(b'c LOGIN "u" "p"\r\n')
    assert conn.next_event() == c.Login("c", "u", "p")


def test_refused_before_login_and_with_arguments() -> None:
    conn = new_connection()
    conn.receive_data(b"a UNAUTHENTICATE\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint == b"a BAD Not authenticated\r\n"
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b"b UNAUTHENTICATE now\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint.startswith(b"b BAD")
