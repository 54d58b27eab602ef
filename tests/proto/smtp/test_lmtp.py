"""The SMTP core in LMTP mode (RFC 2033): LHLO instead of HELO/EHLO, and one reply per
accepted recipient after the end of the data, for DATA and BDAT LAST alike."""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import LocalProtocolError
from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.server import State

from .driver import accept_all, drive, new, splits

RCPTS = b"LHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n"


def test_lhlo_session_one_reply_per_recipient() -> None:
    """RFC 2033 §4.2: after CRLF.CRLF, one reply for each RCPT that got 250, in order;
    the next command is read only after the last of them."""
    data = RCPTS + b"RCPT TO:<refused@x.test>\r\nDATA\r\nS: x\r\n\r\nhi\r\n.\r\nNOOP\r\n"

    def policy(event: ev.Event) -> r.Reply | None:
        if isinstance(event, ev.RcptTo) and event.address.startswith("refused"):
            return r.Reply.of(550, "5.1.1", "no")
        return accept_all(event)

    for pieces in splits(data):
        run = drive(new(lmtp=True), pieces, policy)
        assert [type(e).__name__ for e in run.events][-3:] == [
            "EndOfData",
            "Noop",
            "ConnectionClosed",
        ]
        assert run.events[0] == ev.Hello("c", True)
        # After the 354: two replies to the end of the data (two accepted RCPTs), NOOP's.
        tail = run.output.split(r.START_MAIL_INPUT.to_bytes())[1]
        assert tail == r.OK.to_bytes() * 3


def test_end_of_data_needs_every_reply() -> None:
    """The core keeps EndOfData pending until each recipient has its reply."""
    conn = new(lmtp=True)
    conn.receive_data(RCPTS + b"BDAT 4 LAST\r\nab\r\n")
    events = []
    while True:
        event = conn.next_event()
        events.append(event)
        if isinstance(event, ev.EndOfData):
            break
        reply = accept_all(event)
        if reply is not None:
            conn.send(reply)
    assert conn.replies_due == 2
    conn.send(r.Reply.of(250, "2.1.5", "b delivered"))
    assert conn.awaiting_reply and conn.replies_due == 1
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    conn.send(r.Reply.of(552, "5.2.2", "c over quota"))
    assert not conn.awaiting_reply and conn.state is State.READY


def test_refused_message_gets_one_reply_per_recipient() -> None:
    """A message the core refuses (here too big) is refused once per recipient."""
    data = RCPTS + b"DATA\r\n" + b"x" * 50 + b"\r\n.\r\nNOOP\r\n"
    run = drive(new(lmtp=True, max_message_size=20), [data])
    assert run.errors == [r.MESSAGE_TOO_BIG * 2]
    assert [type(e).__name__ for e in run.events][-2:] == ["Noop", "ConnectionClosed"]


def test_helo_and_ehlo_refused() -> None:
    """RFC 2033 §4.1: an LMTP server does not take HELO or EHLO; MAIL needs LHLO."""
    run = drive(new(lmtp=True), [b"HELO c\r\nEHLO c\r\nMAIL FROM:<>\r\nLHLO c\r\n"])
    assert run.errors == [r.USE_LHLO, r.USE_LHLO, r.LHLO_FIRST]
    assert run.events == [ev.Hello("c", True), ev.ConnectionClosed()]


def test_lhlo_unknown_to_smtp() -> None:
    """An SMTP server does not know LHLO."""
    run = drive(new(), [b"LHLO c\r\n"])
    assert run.errors == [r.UNKNOWN_COMMAND]
