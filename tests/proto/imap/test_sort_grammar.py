"""SORT / UID SORT and THREAD / UID THREAD grammar (RFC 5256 §5, RFC 5267 §5 ESORT, RFC 5957 keys).

Pins: the RFC 5256 §4 example parses; REVERSE binds to the next key only; RETURN comes
before the sort criteria; the charset is required and upper-cased and decides how
search strings decode; unknown keys and empty criteria are refused; SORT is only
allowed in the selected state; THREAD takes an algorithm atom and the same criteria.
"""

from __future__ import annotations

import pytest

from pillarbox.model.sorting import SortCriterion
from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import State
from pillarbox.proto.imap.parser import ParseError, parse_command

from .driver import new_connection


def test_rfc_5256_example() -> None:
    # RFC 5256 §4: C: A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994
    cmd = parse_command(b"A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994")
    assert isinstance(cmd, c.Sort) and not cmd.uid
    assert cmd.criteria == (SortCriterion("SUBJECT"),)
    assert cmd.charset == "UTF-8" and cmd.return_options is None
    assert isinstance(cmd.search.keys[0], c.SearchDate)


def test_reverse_and_esort_return() -> None:
    cmd = parse_command(b"a UID SORT RETURN (min ALL) (reverse date Subject) us-ascii UNSEEN")
    assert isinstance(cmd, c.Sort) and cmd.uid
    assert cmd.return_options == ("MIN", "ALL")
    assert cmd.criteria == (SortCriterion("DATE", True), SortCriterion("SUBJECT"))
    assert cmd.charset == "US-ASCII"
    assert cmd.search == c.SearchAnd((c.SearchFlag("\\Seen", False),))


def test_charset_decides_decoding() -> None:
    cmd = parse_command('a SORT (DISPLAYFROM DISPLAYTO) UTF-8 FROM "é"'.encode(), utf8=True)
    assert isinstance(cmd, c.Sort)
    assert cmd.search.keys == (c.SearchHeader("from", "é"),)


@pytest.mark.parametrize(
    "wire",
    [
        b"a SORT (DATE) ALL",  # no charset
        b"a SORT () UTF-8 ALL",
        b"a SORT (NAME) UTF-8 ALL",
        b"a SORT (REVERSE) UTF-8 ALL",
        b"a SORT (DATE) UTF-8",
        b"a SORT (DATE)  UTF-8 ALL",
    ],
)
def test_refused(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(wire)


def test_only_in_selected_state() -> None:
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b"a SORT (DATE) UTF-8 ALL\r\n")
    with pytest.raises(RemoteProtocolError) as err:
        conn.next_event()
    assert err.value.reply_hint == b"a BAD No mailbox selected\r\n"


def test_thread() -> None:
    # RFC 5256 §4: C: A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000
    cmd = parse_command(b"A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000")
    assert isinstance(cmd, c.Thread) and not cmd.uid
    assert (cmd.algorithm, cmd.charset) == ("ORDEREDSUBJECT", "UTF-8")
    cmd = parse_command(b'a UID THREAD references us-ascii TEXT "gewp"')
    assert isinstance(cmd, c.Thread) and cmd.uid and cmd.algorithm == "REFERENCES"
    assert cmd.search == c.SearchAnd((c.SearchText("gewp"),))
    for wire in (b"a THREAD REFERENCES ALL", b"a THREAD UTF-8 ALL", b"a THREAD (X) UTF-8 ALL"):
        with pytest.raises(ParseError):
            parse_command(wire)
