"""Transcript tests of the SMTP core: each transcript is fed whole, split at every byte
boundary and byte by byte, and must give the same events, errors and replies."""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.server import State

from .driver import Run, accept_all, drive, new, splits

SESSION = (
    b"EHLO client.example\r\n"
    b"MAIL FROM:<alice@example.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef\r\n"
    b"RCPT TO:<bob@example.test> NOTIFY=SUCCESS,failure ORCPT=rfc822;bob@example.test\r\n"
    b"RCPT TO:<Postmaster>\r\n"
    b"DATA\r\n"
    b"Subject: hi\r\n\r\n..leading dot\r\nline\r\n.\r\n"
    b"QUIT\r\n"
)


def _skeleton(run: Run) -> list[object]:
    return [x for x in run.records if not isinstance(x, ev.BodyChunk)]


def all_splits_agree(data: bytes, **limits: int) -> Run:
    """Run every split of `data`; assert they agree; return the whole-piece run."""
    reference: Run | None = None
    for pieces in splits(data):
        run = drive(new(**limits), pieces)
        if reference is None:
            reference = run
        else:
            # Body handed out before a violation depends on where the input was cut;
            # everything else, and the whole body of a good message, must not.
            assert _skeleton(run) == _skeleton(reference), pieces
            assert run.output == reference.output, pieces
            if not reference.errors:
                assert run.body == reference.body
    assert reference is not None
    return reference


def test_full_session_events() -> None:
    """A pipelined session yields the commands as parsed events and the unstuffed body."""
    run = all_splits_agree(SESSION)
    assert run.events == [
        ev.Hello("client.example", True),
        ev.MailFrom(
            "alice@example.test",
            size=100,
            body="8BITMIME",
            ret="HDRS",
            envid="abc+2Bdef",
        ),
        ev.RcptTo("bob@example.test", notify="SUCCESS,FAILURE", orcpt="rfc822;bob@example.test"),
        ev.RcptTo("postmaster"),
        ev.DataStart(),
        ev.BodyChunk(b"Subject: hi\r\n\r\n.leading dot\r\nline\r\n"),
        ev.EndOfData(35),
        ev.Quit(),
    ]
    assert run.errors == []
    assert run.output.endswith(b"221 2.0.0 Bye\r\n")


def test_bdat_session() -> None:
    """BDAT chunks arrive as BodyChunks; non-LAST ends with ChunkEnd, LAST with EndOfData;
    pipelined commands after the octets are parsed as commands again (RFC 3030)."""
    data = (
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\n"
        b"BDAT 12\r\nSubject: x\r\nBDAT 8 LAST\r\n\r\nbody\r\nNOOP\r\n"
    )
    run = all_splits_agree(data)
    assert run.events == [
        ev.Hello("c", True),
        ev.MailFrom(""),
        ev.RcptTo("b@example.test"),
        ev.Bdat(12, False),
        ev.BodyChunk(b"Subject: x\r\n"),
        ev.ChunkEnd(12),
        ev.Bdat(8, True),
        ev.BodyChunk(b"\r\nbody\r\n"),
        ev.EndOfData(20),
        ev.Noop(),
        ev.ConnectionClosed(),
    ]
    assert run.output.count(b"250 ") == 6


def test_starttls_discards_pipelined_plaintext() -> None:
    """Commands pipelined after STARTTLS in the plaintext are dropped (CVE-2011-0411)."""
    conn = new()
    run = drive(
        conn,
        [b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@x.test>\r\n"],
        eof=False,
    )
    assert [type(e) for e in run.events] == [ev.Hello, ev.StartTls]
    assert conn.state is State.INITIAL and conn.tls
    after = drive(conn, [b"MAIL FROM:<a@x.test>\r\nEHLO c2\r\n"], eof=False)
    assert after.errors == [r.HELLO_FIRST]
    assert after.events == [ev.Hello("c2", True)]


def test_starttls_twice_and_in_transaction() -> None:
    run = drive(new(), [b"STARTTLS\r\nEHLO c\r\nMAIL FROM:<>\r\nSTARTTLS\r\n"])
    assert run.errors == [r.HELLO_FIRST, r.BAD_SEQUENCE]
    conn = new()
    drive(conn, [b"EHLO c\r\nSTARTTLS\r\n"], eof=False)
    run = drive(conn, [b"EHLO c\r\nSTARTTLS\r\n"], eof=False)
    assert run.errors == [r.ALREADY_TLS]


def test_auth_exchange() -> None:
    """AUTH without initial response gets a 334; the next line is an AuthResponse."""

    def policy(event: ev.Event) -> r.Reply | None:
        if isinstance(event, ev.AuthResponse) and not event.cancelled:
            return r.AUTH_FAILED
        return accept_all(event)

    data = b"EHLO c\r\nAUTH LOGIN\r\ndXNlcg==\r\nAUTH PLAIN\r\n*\r\nNOOP\r\n"
    run = drive(new(), [data], policy)
    assert run.events[1:5] == [
        ev.Auth("LOGIN", None),
        ev.AuthResponse(b"user"),
        ev.Auth("PLAIN", None),
        ev.AuthResponse(b"", cancelled=True),
    ]
    assert ev.AuthResponse(b"", cancelled=True) in run.events
    assert b"501 5.0.0 Authentication cancelled" in run.output


def test_auth_initial_response_and_errors() -> None:
    run = all_splits_agree(
        b"AUTH PLAIN AGEAYg==\r\nEHLO c\r\nAUTH PLAIN AGEAYg==\r\nAUTH PLAIN =\r\n"
        b"HELO c\r\nAUTH PLAIN\r\n"
    )
    assert run.errors == [r.HELLO_FIRST, r.ALREADY_AUTHENTICATED, r.HELLO_FIRST]
    assert ev.Auth("PLAIN", b"\x00a\x00b") in run.events


def test_auth_bad_base64() -> None:
    """Invalid base64 in an AUTH response gives 501 and ends the exchange."""
    conn = new()

    def policy(event: ev.Event) -> r.Reply | None:
        if isinstance(event, ev.Auth):
            return r.Reply.of(334, None, "")
        return accept_all(event)

    run = drive(conn, [b"EHLO c\r\nAUTH PLAIN\r\n!!!\r\nAUTH PLAIN a\r\nNOOP\r\n"], policy)
    assert run.errors == [r.BAD_BASE64, r.BAD_BASE64]
    assert isinstance(run.events[-2], ev.Noop)


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"MAIL FROM:<a@b.test>", r.NESTED_MAIL),
        (b"DATA extra", r.BAD_ARGUMENTS),
        (b"RCPT TO:<a@b.test> FOO=1", r.UNKNOWN_PARAMETER),
        (b"RCPT TO:<a@b.test> NOTIFY=NEVER,SUCCESS", r.BAD_PARAMETER),
        (b"RCPT TO:<a@b.test> NOTIFY", r.BAD_PARAMETER),
        (b"RCPT TO:<a@b.test> ORCPT=bogus", r.BAD_PARAMETER),
        (b"RCPT TO:<>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:a@b.test", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<a@b.test.>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<a@b@c.test>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<a..b@c.test>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<a@[300.1.1.1]>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<a@[example.test]>", r.BAD_RECIPIENT_SYNTAX),
        (b"RCPT TO:<@a.test:>", r.BAD_RECIPIENT_SYNTAX),
        ("RCPT TO:<jörg@b.test>".encode(), r.NON_ASCII_ADDRESS),
        (b"RCPT TO:<a@b.test>x", r.BAD_RECIPIENT_SYNTAX),
        (b"EXPN list", r.NOT_IMPLEMENTED),
        (b"FROB", r.UNKNOWN_COMMAND),
        (b"RCPT TO:<a\xff@b.test>", r.BAD_CHARACTERS),
        (b"RCPT TO:<a\x00@b.test>", r.BAD_CHARACTERS),
    ],
)
def test_command_errors_in_mail_state(line: bytes, reply: bytes) -> None:
    """Syntax and sequence errors give the exact RFC 5321/3463 reply and change nothing."""
    conn = new()
    run = drive(conn, [b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n" + line + b"\r\n"], eof=False)
    assert run.errors == [reply]
    assert conn.state is State.MAIL


@pytest.mark.parametrize(
    ("line", "mailbox"),
    [
        (b'RCPT TO:<"alice"@example.test>', "alice@example.test"),
        (b'RCPT TO:<"a@remote.test"@example.test>', '"a@remote.test"@example.test'),
        (b"RCPT TO:<@relay.test,@b.test:alice@example.test>", "alice@example.test"),
        (b"RCPT TO:<a%remote.test@example.test>", "a%remote.test@example.test"),
        (b"RCPT TO:<remote.test!a@example.test>", "remote.test!a@example.test"),
        (b"RCPT TO:<a@[127.0.0.1]>", "a@[127.0.0.1]"),
        (b"RCPT TO:<a@[IPv6:::1]>", "a@[IPv6:::1]"),
        (b"RCPT TO: <Alice@Example.TEST>", "Alice@Example.TEST"),
        (b"rcpt to:<postMaster>", "postmaster"),
    ],
)
def test_recipient_forms(line: bytes, mailbox: str) -> None:
    """Valid but tricky paths reach policy as one unambiguous mailbox."""
    run = drive(new(), [b"EHLO c\r\nMAIL FROM:<a@x.test>\r\n" + line + b"\r\n"])
    assert run.errors == []
    assert ev.RcptTo(mailbox) in run.events


def test_smtputf8() -> None:
    """Non-ASCII addresses need SMTPUTF8 on MAIL (RFC 6531 §3.4)."""
    run = drive(
        new(),
        [
            "EHLO c\r\nMAIL FROM:<jörg@exämple.test>\r\n"
            "MAIL FROM:<jörg@exämple.test> SMTPUTF8\r\nRCPT TO:<用户@例子.test>\r\n".encode()
        ],
    )
    assert run.errors == [r.NON_ASCII_ADDRESS]
    assert ev.MailFrom("jörg@exämple.test", smtputf8=True) in run.events
    assert ev.RcptTo("用户@例子.test") in run.events


def test_helo_forbids_esmtp_params() -> None:
    run = drive(new(), [b"HELO c\r\nMAIL FROM:<a@x.test> SIZE=10\r\nAUTH PLAIN\r\n"])
    assert run.errors == [r.ESMTP_PARAMS_AFTER_HELO, r.HELLO_FIRST]


def test_sequence_errors() -> None:
    run = all_splits_agree(
        b"MAIL FROM:<a@x.test>\r\nEHLO c\r\nRCPT TO:<a@x.test>\r\nDATA\r\n"
        b"MAIL FROM:<a@x.test>\r\nDATA\r\nRSET\r\nBDAT 3\r\nabcNOOP\r\n"
    )
    assert run.errors == [
        r.HELLO_FIRST,
        r.NEED_MAIL,
        r.NEED_MAIL,
        r.NO_VALID_RECIPIENTS,
        r.NEED_MAIL,
    ]
    assert isinstance(run.events[-2], ev.Noop)


def test_data_after_bdat_refused() -> None:
    run = drive(new(), [b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nBDAT 1\r\nxDATA\r\n"])
    assert run.errors == [r.DATA_AFTER_BDAT]


def test_size_parameter_and_actual_size() -> None:
    """SIZE over the limit is refused at MAIL (RFC 1870 §6.2); a sender that ignores SIZE
    is refused at the end of the data, which is read to the end and dropped."""
    run = all_splits_agree(
        b"EHLO c\r\nMAIL FROM:<a@x.test> SIZE=101\r\nMAIL FROM:<a@x.test> SIZE=100\r\n"
        b"RCPT TO:<b@x.test>\r\nDATA\r\n" + b"x" * 98 + b"\r\n" + b"y\r\n.\r\nNOOP\r\n",
        max_message_size=100,
    )
    assert run.errors == [r.MESSAGE_TOO_BIG, r.MESSAGE_TOO_BIG]
    assert run.body == b""  # nothing of an oversize message is handed out...
    assert isinstance(run.events[-2], ev.Noop)  # ...and the session goes on


def test_bdat_oversize() -> None:
    run = all_splits_agree(
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x.test>\r\nBDAT 6\r\n123456BDAT 6 LAST\r\n"
        b"abcdefNOOP\r\n",
        max_message_size=10,
    )
    assert run.errors == [r.MESSAGE_TOO_BIG]
    assert isinstance(run.events[-2], ev.Noop)


def test_header_and_line_limits() -> None:
    head = b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
    run = drive(
        new(max_header_size=20),
        [head + b"Subject: aaaaaaaaaaaaaaaaaaaaaa\r\n\r\nbody\r\n.\r\nNOOP\r\n"],
    )
    assert run.errors == [r.HEADER_TOO_BIG]
    run = drive(new(max_body_line=10), [head + b"S: a\r\n\r\n" + b"b" * 20 + b"\r\n.\r\n"])
    assert run.errors == [r.BODY_LINE_TOO_LONG]
    run = drive(new(max_header_size=20), [head + b"\r\n" + b"b" * 50 + b"\r\n.\r\n"])
    assert run.errors == []


def test_command_line_too_long() -> None:
    """A long line is refused once, without waiting for its end; the next line works."""
    run = all_splits_agree(b"NOOP " + b"x" * 100 + b"\r\nNOOP\r\n", max_line=50)
    assert run.errors == [r.LINE_TOO_LONG]
    assert run.events == [ev.Noop(), ev.ConnectionClosed()]


def test_too_many_recipients() -> None:
    rcpts = b"".join(b"RCPT TO:<u%d@x.test>\r\n" % i for i in range(4))
    run = drive(new(max_recipients=3), [b"EHLO c\r\nMAIL FROM:<>\r\n" + rcpts])
    assert run.errors == [r.TOO_MANY_RECIPIENTS]


def test_too_many_errors_closes() -> None:
    run = drive(new(max_errors=3), [b"FOO\r\n" * 10])
    assert run.errors[-1] == r.TOO_MANY_ERRORS
    assert len(run.errors) == 4


def test_rejected_replies_count_as_errors() -> None:
    """5xx answers from policy (e.g. unknown users) count towards the error limit."""

    def refuse(event: ev.Event) -> r.Reply | None:
        if isinstance(event, ev.RcptTo):
            return r.Reply.of(550, "5.1.1", "No such user")
        return accept_all(event)

    run = drive(
        new(max_errors=2),
        [b"EHLO c\r\nMAIL FROM:<>\r\n" + b"RCPT TO:<x@y.test>\r\n" * 5],
        refuse,
    )
    assert run.errors == [r.TOO_MANY_ERRORS]


def test_http_request_closes() -> None:
    run = drive(new(), [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert run.errors == [r.NOT_SMTP]


def test_eof_mid_data() -> None:
    run = drive(new(), [b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nDATA\r\nabc"])
    assert run.events[-1] == ev.ConnectionClosed()
    assert not any(isinstance(e, ev.EndOfData) for e in run.events)


def test_reply_discipline() -> None:
    """The core refuses to hand out an event before the previous one was answered, and
    refuses replies that answer nothing."""
    conn = new()
    with pytest.raises(LocalProtocolError):
        conn.send(r.OK)
    conn.send(r.Reply.of(220, None, "hi"))
    conn.receive_data(b"NOOP\r\nNOOP\r\n")
    assert conn.next_event() == ev.Noop()
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    conn.send(r.OK)
    assert conn.next_event() == ev.Noop()


def test_failed_end_of_data_voids_transaction() -> None:
    conn = new()

    def policy(event: ev.Event) -> r.Reply | None:
        if isinstance(event, ev.EndOfData):
            return r.LOCAL_ERROR
        return accept_all(event)

    drive(
        conn,
        [b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nDATA\r\nx\r\n.\r\n"],
        policy,
        eof=False,
    )
    assert conn.state is State.READY and not conn.in_transaction


def test_error_hint_is_raised_as_remote_protocol_error() -> None:
    conn = new()
    conn.receive_data(b"BOGUS\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply_hint == r.UNKNOWN_COMMAND and not info.value.fatal
