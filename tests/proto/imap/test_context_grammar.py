"""RETURN options of RFC 5267 §4 (CONTEXT, UPDATE, PARTIAL) and CANCELUPDATE (§4.3.5).

Pins: the RFC's own commands parse (``PARTIAL 1:500``, ``RETURN (UPDATE COUNT)``,
``CANCELUPDATE "B01"``) for SEARCH and SORT alike; RFC 9394's negative ranges parse
(``-1:-100``) and a range keeps the order it was sent in; PARTIAL's slice picks the
1-based positions, counted from the end when negative; malformed ranges (0, "*", mixed
signs, missing), PARTIAL with ALL, PARTIAL or UPDATE twice are BAD; SORT accepts SAVE;
UPDATE may carry fetch attributes (RFC 5465 §7); CANCELUPDATE takes only quoted tags and
only in the selected state.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State
from pillarbox.proto.imap.parser import ParseError, parse_command

from .driver import new_connection


def test_rfc_5267_partial_example() -> None:
    # RFC 5267 §4.4: C: A01 UID SEARCH RETURN (PARTIAL 1:500) UNDELETED
    cmd = parse_command(b"A01 UID SEARCH RETURN (PARTIAL 1:500) UNDELETED")
    assert isinstance(cmd, c.Search) and cmd.uid
    assert cmd.return_options == ("PARTIAL",)
    assert cmd.partial == c.PartialRange(1, 500)


def test_update_context_and_count() -> None:
    cmd = parse_command(b"B01 UID SEARCH RETURN (update Count context) DELETED KEYWORD $Junk")
    assert isinstance(cmd, c.Search)
    assert cmd.return_options == ("UPDATE", "COUNT", "CONTEXT") and cmd.partial is None


def test_update_with_fetch_attributes() -> None:
    """RFC 5465 §7 (NOTIFY with CONTEXT=SEARCH): UPDATE may carry fetch attributes."""
    cmd = parse_command(
        b"a SEARCH RETURN (COUNT UPDATE (UID BODY.PEEK[HEADER.FIELDS (TO FROM SUBJECT)])) "
        b'FROM "boss"'
    )
    assert isinstance(cmd, c.Search) and cmd.return_options == ("COUNT", "UPDATE")
    assert cmd.update_fetch[0] == c.FetchAttribute("UID")
    assert isinstance(cmd.update_fetch[1], c.FetchBody)
    cmd = parse_command(b"a UID SORT RETURN (UPDATE (FLAGS) MIN) (DATE) UTF-8 ALL")
    assert isinstance(cmd, c.Sort) and cmd.return_options == ("UPDATE", "MIN")
    assert cmd.update_fetch == (c.FetchAttribute("FLAGS"),)
    for wire in (b"a SEARCH RETURN (UPDATE ()) ALL", b"a SEARCH RETURN (UPDATE (FAST)) ALL"):
        with pytest.raises(ParseError):
            parse_command(wire)


def test_negative_and_reversed_ranges() -> None:
    cmd = parse_command(b"a SEARCH RETURN (MIN PARTIAL -1:-100 COUNT) ALL")
    assert isinstance(cmd, c.Search)
    assert cmd.return_options == ("MIN", "PARTIAL", "COUNT")
    assert cmd.partial == c.PartialRange(-1, -100)
    assert cmd.partial.wire() == b"-1:-100"
    cmd = parse_command(b"a SEARCH RETURN (PARTIAL 500:400) ALL")
    assert isinstance(cmd, c.Search) and cmd.partial == c.PartialRange(500, 400)


@pytest.mark.parametrize(
    ("first", "last", "count", "picked"),
    [
        (1, 500, 1000, range(1, 501)),
        (501, 1000, 764, range(501, 765)),  # RFC 5267 §4.4: runs past the end
        (500, 400, 1000, range(400, 501)),  # "A range 500:400 is the same as 400:500"
        (24000, 24500, 10, range(0)),  # nothing there: NIL
        (-1, -1, 10, [10]),  # RFC 9394 §3.1: -1 is the last result
        (-1, -3, 10, [8, 9, 10]),
        (-3, -1, 2, [1, 2]),
        (-20, -30, 10, range(0)),
    ],
)
def test_partial_slice(first: int, last: int, count: int, picked: Sequence[int]) -> None:
    """The positions (1-based) PARTIAL picks from a result of `count`."""
    start, stop = c.PartialRange(first, last).slice_of(count)
    assert list(range(1, count + 1))[start:stop] == list(picked)


def test_sort_takes_context_options_and_save() -> None:
    cmd = parse_command(b"B02 UID SORT RETURN (UPDATE PARTIAL 1:10 SAVE) (DATE) UTF-8 ALL")
    assert isinstance(cmd, c.Sort) and cmd.uid
    assert cmd.return_options == ("UPDATE", "PARTIAL", "SAVE")
    assert cmd.partial == c.PartialRange(1, 10)


@pytest.mark.parametrize(
    "wire",
    [
        b"a SEARCH RETURN (PARTIAL) ALL",
        b"a SEARCH RETURN (PARTIAL 0:10) ALL",
        b"a SEARCH RETURN (PARTIAL 1:*) ALL",
        b"a SEARCH RETURN (PARTIAL -1:10) ALL",
        b"a SEARCH RETURN (PARTIAL 1:-10) ALL",
        b"a SEARCH RETURN (PARTIAL 1) ALL",
        b"a SEARCH RETURN (PARTIAL 1:2,4) ALL",
        b"a SEARCH RETURN (PARTIAL 1:99999999999) ALL",
        b"a SEARCH RETURN (PARTIAL 1:10 ALL) ALL",
        b"a SEARCH RETURN (ALL PARTIAL 1:10) ALL",
        b"a SEARCH RETURN (PARTIAL 1:10 PARTIAL 11:20) ALL",
        b"a SEARCH RETURN (UPDATE UPDATE) ALL",
        b"a SEARCH RETURN (FOO) ALL",
        b"a SORT RETURN (PARTIAL 1:10 ALL) (DATE) UTF-8 ALL",
        b"a SORT RETURN (PARTIAL x) (DATE) UTF-8 ALL",
    ],
)
def test_refused(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(wire)


def test_cancelupdate() -> None:
    # RFC 5267 §4.3.5: C: B03 CANCELUPDATE "B01"
    cmd = parse_command(b'B03 CANCELUPDATE "B01"')
    assert cmd == c.CancelUpdate("B03", ("B01",))
    cmd = parse_command(b'B04 cancelupdate "B01" "B02"')
    assert isinstance(cmd, c.CancelUpdate) and cmd.tags == ("B01", "B02")
    for wire in (b"a CANCELUPDATE", b"a CANCELUPDATE B01", b'a CANCELUPDATE "B01" x'):
        with pytest.raises(ParseError):
            parse_command(wire)


def test_cancelupdate_only_when_selected() -> None:
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b'a CANCELUPDATE "B01"\r\n')
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint == b"a BAD No mailbox selected\r\n"
