"""COMPRESS in the sans-I/O core (RFC 4978).

Pins: COMPRESS parses with its mechanism upper-cased; it is a command-auth (refused before
login, RFC 4978 §5); `compression_started()` hands back, untouched, the bytes buffered
after the command — they are compressed and must not be framed as plaintext.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State

from .driver import new_connection


def test_compress_parses_in_authenticated_and_selected() -> None:
    for state in (State.AUTHENTICATED, State.SELECTED):
        conn = new_connection(state=state)
        conn.receive_data(b"a COMPRESS deflate\r\n")
        assert conn.next_event() == c.Compress("a", "DEFLATE")


def test_compress_needs_a_mechanism() -> None:
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b"a COMPRESS\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint.startswith(b"a BAD")


def test_compress_refused_before_login() -> None:
    conn = new_connection()
    conn.receive_data(b"a COMPRESS DEFLATE\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint == b"a BAD Not authenticated\r\n"


def test_compression_started_returns_buffered_bytes() -> None:
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b"a COMPRESS DEFLATE\r\n\x4a\x4c\x00\r\nb NOOP\r\n")
    assert isinstance(conn.next_event(), c.Compress)
    assert conn.compression_started() == b"\x4a\x4c\x00\r\nb NOOP\r\n"
    assert conn.next_event() is c.NEED_DATA
    conn.receive_data(b"b NOOP\r\n")
    assert conn.next_event() == c.Noop("b")
