"""ServerConnection framing, states, limits and recovery.

Pins: the same events whatever the TCP segmentation (every byte boundary); ContinuationNeeded
for {n} and none for {n+}; refusals before a literal is sent (RFC 9051 §7.5, RFC 7888 §4,
RFC 7889); literal bytes are never read as commands after an error; state checks; the
AUTHENTICATE and IDLE sub-exchanges; STARTTLS discards pipelined plaintext.
"""

from __future__ import annotations

import pytest

from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import Limits, ServerConnection, State

from .driver import Reply, drain, every_split, new_connection, run

SESSION = (
    b"a1 CAPABILITY\r\n"
    b"a2 LOGIN {3}\r\nbob {6+}\r\nsecret\r\n"
    b"a3 ENABLE UTF8=ACCEPT\r\n"
    b'a4 SELECT "Entw\xc3\xbcrfe" (CONDSTORE)\r\n'
    b"a5 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]) (CHANGEDSINCE 3)\r\n"
    b"a6 APPEND INBOX (\\Seen) {5}\r\nhello ~{3+}\r\na\x00b\r\n"
    b"a7 FROB\r\n"
    b"a8 LOGIN {4+}\r\nx\r\ny a9 NOOP\r\n"
    b"b1 IDLE\r\nDONE\r\n"
    b"b2 SEARCH OR SEEN (UNSEEN FROM {2}\r\nab) UID 1:*\r\n"
    b"b3 CLOSE\r\n"
    b"b4 LOGOUT\r\n"
    b"b5 NOOP\r\n"
)


def test_session_events() -> None:
    """A whole session gives exactly these events and replies, in order."""
    results = run([SESSION])
    assert results == [
        c.Capability("a1"),
        c.ContinuationNeeded("a2", 3),
        c.Login("a2", "bob", "secret"),
        c.Enable("a3", ("UTF8=ACCEPT",)),
        c.Select("a4", "Entwürfe", (("CONDSTORE", None),), condstore=True),
        c.Fetch(
            "a5",
            True,
            c.SequenceSet((c.SeqRange(1, None),)),
            (
                c.FetchAttribute("FLAGS"),
                c.FetchBody(kind="HEADER.FIELDS", fields=("From",), peek=True),
            ),
            3,
        ),
        c.ContinuationNeeded("a6", 5),
        c.Append(
            "a6",
            "INBOX",
            (
                c.AppendMessage(("\\Seen",), None, b"hello"),
                c.AppendMessage((), None, b"a\x00b", binary=True),
            ),
        ),
        Reply(b"a7 BAD Unknown command\r\n"),
        # LOGIN in the selected state is refused; its {4+} literal "x\r\ny" is skipped,
        # never read as a command, and the rest of that line is part of the bad command.
        Reply(b"a8 BAD Already authenticated\r\n"),
        c.Idle("b1"),
        c.Done("b1"),
        c.ContinuationNeeded("b2", 2),
        c.Search(
            "b2",
            criteria=c.SearchAnd(
                (
                    c.SearchOr(
                        c.SearchFlag("\\Seen"),
                        c.SearchAnd((c.SearchFlag("\\Seen", False), c.SearchHeader("from", "ab"))),
                    ),
                    c.SearchSequence(c.SequenceSet((c.SeqRange(1, None),)), uid=True),
                )
            ),
        ),
        c.Close("b3"),
        c.Logout("b4"),
        c.ConnectionClosed(),
    ]


def test_session_every_split() -> None:
    """Segmentation never changes the events (every byte boundary, and byte by byte)."""
    expected = run([SESSION])
    for chunks in every_split(SESSION):
        assert run(chunks) == expected


ERRORS = (
    b"a LOGIN {3}\r\nbob\r\n"  # missing password
    b'b LOGIN "x\r\n'  # unterminated quote
    b"c LOGIN (x y\r\n"
    b"* NOOP\r\n"
    b"\r\n"
    b"d LOGIN {5+}\r\nd NOO P\r\n"  # the literal is "d NOO", whatever it looks like
    b"e NOOP\r\n"
)


def test_error_recovery_every_split() -> None:
    """After each BAD the next command is parsed normally, whatever the segmentation."""
    expected = [
        c.ContinuationNeeded("a", 3),
        Reply(b"a BAD Missing argument\r\n"),
        Reply(b"b BAD Unterminated quoted string\r\n"),
        Reply(b"c BAD Expected string\r\n"),
        Reply(b"* BAD Invalid tag\r\n"),
        c.Login("d", "d NOO", "P"),
        c.Noop("e"),
    ]
    for chunks in every_split(ERRORS):
        assert run(chunks) == expected


def test_sync_literal_waits_for_continuation() -> None:
    """{n}: ContinuationNeeded, then exactly n bytes are read, CRLF inside included."""
    conn = new_connection(state=State.AUTHENTICATED)
    conn.receive_data(b"a APPEND INBOX {4}\r\n")
    assert conn.next_event() == c.ContinuationNeeded("a", 4)
    assert conn.next_event() is c.NEED_DATA
    conn.receive_data(b"x\r\n")
    assert conn.next_event() is c.NEED_DATA
    conn.receive_data(b"y\r\n")
    ev = conn.next_event()
    assert isinstance(ev, c.Append) and ev.messages[0].data == b"x\r\ny"


def test_zero_length_literal() -> None:
    """{0} still needs a continuation and yields an empty string."""
    assert run([b"a LOGIN {0}\r\n {0+}\r\n\r\n"]) == [
        c.ContinuationNeeded("a", 0),
        c.Login("a", "", ""),
    ]


def test_oversize_sync_literal_gets_no_toobig() -> None:
    """RFC 9051 §7.1 TOOBIG / RFC 7889: refused with tagged NO instead of "+"; the client
    sends nothing more for that command, so the next line is a new command."""
    limits = Limits(max_literal_size=10)
    assert run(
        [b"a APPEND INBOX {11}\r\nb NOOP\r\n"], limits=limits, state=State.AUTHENTICATED
    ) == [Reply(b"a NO [TOOBIG] Literal too large\r\n"), c.Noop("b")]


def test_unauthenticated_literal_limit() -> None:
    """Before login, literals are limited more tightly (RFC 9051 §11.1)."""
    limits = Limits(max_unauthenticated_literal_size=4)
    assert run([b"a LOGIN {5}\r\n"], limits=limits) == [
        Reply(b"a NO [TOOBIG] Literal too large\r\n")
    ]
    assert run([b"a LOGIN {4}\r\nabcd x\r\n"], limits=limits)[-1] == c.Login("a", "abcd", "x")


@pytest.mark.parametrize("split", [False, True])
def test_oversize_nonsync_literal_is_skipped(split: bool) -> None:
    """RFC 7888 §4: BAD [TOOBIG]; the literal's octets are read and dropped, so a literal
    that looks like commands is never executed, and the rest of its command is skipped."""
    limits = Limits(max_literal_size=10)
    data = b"a APPEND INBOX {20+}\r\nz LOGOUT\r\nz LOGOUT\r\n {3+}\r\nabc\r\nb NOOP\r\n"
    chunks = [data[i : i + 1] for i in range(len(data))] if split else [data]
    assert run(chunks, limits=limits, state=State.AUTHENTICATED) == [
        Reply(b"a BAD [TOOBIG] Literal too large\r\n"),
        c.Noop("b"),
    ]


def test_oversize_nonsync_beyond_discard_is_fatal() -> None:
    """A non-synchronising literal too large even to skip closes the connection with BYE."""
    limits = Limits(max_literal_size=10, max_discard_size=100)
    assert run([b"a APPEND INBOX {101+}\r\n"], limits=limits, state=State.AUTHENTICATED) == [
        Reply(b"* BYE [TOOBIG] Literal too large\r\n", fatal=True)
    ]


def test_literal_minus() -> None:
    """LITERAL-: {n+} over 4096 is refused (and skipped); 4096 is fine."""
    limits = Limits(literal_minus=True)
    big = b"x" * 4097
    res = run(
        [
            b"a APPEND INBOX {4097+}\r\n"
            + big
            + b"\r\nb APPEND INBOX {4096+}\r\n"
            + big[:4096]
            + b"\r\n"
        ],
        limits=limits,
        state=State.AUTHENTICATED,
    )
    assert res[0] == Reply(b"a BAD [TOOBIG] Literal too large\r\n")
    assert isinstance(res[1], c.Append) and res[1].messages[0].data == big[:4096]


def test_command_size_and_literal_count_limits() -> None:
    """Total command size and the number of literals are bounded."""
    limits = Limits(max_command_size=30, max_literals=2)
    assert run(
        [b"a APPEND INBOX {10+}\r\n0123456789 {10+}\r\n0123456789\r\nb NOOP\r\n"],
        limits=limits,
        state=State.AUTHENTICATED,
    ) == [Reply(b"a BAD [TOOBIG] Literal too large\r\n"), c.Noop("b")]
    limits = Limits(max_literals=2)
    assert run([b"a LOGIN {1+}\r\na {1+}\r\nb {1+}\r\nc\r\nb NOOP\r\n"], limits=limits) == [
        Reply(b"a BAD Too many literals\r\n"),
        c.Noop("b"),
    ]


@pytest.mark.parametrize("split", [False, True])
def test_line_too_long(split: bool) -> None:
    """An over-long line gets tagged BAD as soon as it is proven too long, is not kept in
    memory, and the command continues to be skipped through a literal it announces."""
    limits = Limits(max_line_length=50)
    data = (
        b"a SEARCH " + b"SEEN " * 20 + b"TEXT {12+}\r\nc LOGOUT\r\nx\r\n"
        b"b NOOP\r\n"
        b"c NOOP " + b"x" * 60 + b"\r\n"
        b"d NOOP\r\n"
    )
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)] if split else [data]
    assert run(chunks, limits=limits, state=State.SELECTED) == [
        Reply(b"a BAD Line too long\r\n"),
        c.Noop("b"),
        Reply(b"c BAD Line too long\r\n"),
        c.Noop("d"),
    ]


def test_line_too_long_without_tag() -> None:
    """Without a readable tag the BAD is untagged."""
    limits = Limits(max_line_length=20)
    assert run([b"(" * 30 + b"\r\na NOOP\r\n"], limits=limits) == [
        Reply(b"* BAD Line too long\r\n"),
        c.Noop("a"),
    ]


STATE_CASES = [
    (State.NOT_AUTHENTICATED, b"a SELECT INBOX", b"a BAD Not authenticated"),
    (State.NOT_AUTHENTICATED, b"a FETCH 1 FLAGS", b"a BAD Not authenticated"),
    (State.AUTHENTICATED, b"a FETCH 1 FLAGS", b"a BAD No mailbox selected"),
    (State.AUTHENTICATED, b"a UID EXPUNGE 1", b"a BAD No mailbox selected"),
    (State.AUTHENTICATED, b"a LOGIN a b", b"a BAD Already authenticated"),
    (State.AUTHENTICATED, b"a STARTTLS", b"a BAD Already authenticated"),
    (State.SELECTED, b"a ENABLE X", b"a BAD ENABLE is not allowed in the selected state"),
]


@pytest.mark.parametrize(("state", "wire", "reply"), STATE_CASES)
def test_wrong_state(state: State, wire: bytes, reply: bytes) -> None:
    """Commands outside their state get BAD (RFC 9051 §6)."""
    assert run([wire + b"\r\n"], state=state) == [Reply(reply + b"\r\n")]


def test_wrong_state_with_sync_literal_is_refused_before_continuation() -> None:
    """No "+" is sent for a command the state forbids; the client abandons it."""
    assert run([b"a SELECT {5}\r\nb NOOP\r\n"]) == [
        Reply(b"a BAD Not authenticated\r\n"),
        c.Noop("b"),
    ]


def test_authenticate_exchange() -> None:
    """AUTHENTICATE without SASL-IR: the server's challenge arms one response line."""
    conn = ServerConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    ev = conn.next_event()
    assert ev == c.Authenticate("a", "PLAIN")
    assert conn.next_event() is c.NEED_DATA
    assert conn.auth_challenge(b"") == b"+ \r\n"
    conn.receive_data(b"AGJvYgBwdw==\r\n")
    assert conn.next_event() == c.AuthenticateResponse("a", b"\x00bob\x00pw")
    assert conn.auth_challenge(b"more?") == b"+ bW9yZT8=\r\n"
    conn.receive_data(b"\r\n")
    assert conn.next_event() == c.AuthenticateResponse("a", b"")
    conn.authenticated()
    assert conn.state is State.AUTHENTICATED


def test_authenticate_cancel_and_bad_base64() -> None:
    """'*' cancels; invalid base64 gets tagged BAD; both end the exchange."""
    results: list[object] = []
    conn = ServerConnection()
    conn.receive_data(b"a AUTHENTICATE PLAIN\r\n")
    assert isinstance(conn.next_event(), c.Authenticate)
    conn.auth_challenge(b"")
    conn.receive_data(b"*\r\nb AUTHENTICATE LOGIN\r\n")
    assert conn.next_event() == c.AuthenticateResponse("a", b"", cancelled=True)
    assert conn.next_event() == c.Authenticate("b", "LOGIN")
    conn.auth_challenge(b"Username:")
    conn.receive_data(b"!!\r\nc NOOP\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply_hint == b"b BAD Invalid base64\r\n"
    assert conn.next_event() == c.Noop("c")
    assert results == []


def test_auth_challenge_outside_authenticate_is_a_local_error() -> None:
    """The server cannot arm a SASL response without an AUTHENTICATE in progress."""
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.auth_challenge(b"")
    with pytest.raises(LocalProtocolError):
        conn.idle_accepted()


def test_idle_done_and_garbage() -> None:
    """After IDLE the next line must be DONE; anything else ends IDLE with BAD."""
    assert run(
        [b"a IDLE\r\ndone\r\nb IDLE\r\nc NOOP\r\nd NOOP\r\n"], state=State.AUTHENTICATED
    ) == [
        c.Idle("a"),
        c.Done("a"),
        c.Idle("b"),
        Reply(b"b BAD Expected DONE\r\n"),
        c.Noop("d"),
    ]


def test_starttls_discards_pipelined_plaintext() -> None:
    """Bytes after STARTTLS in the same plaintext segment are dropped (RFC 3207 §4.2 class)."""
    conn = ServerConnection()
    conn.receive_data(b"a STARTTLS\r\nb LOGIN evil pw\r\n")
    assert conn.next_event() == c.StartTls("a")
    conn.start_tls()
    assert conn.next_event() is c.NEED_DATA
    conn.receive_data(b"c STARTTLS\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply_hint == b"c BAD TLS is already active\r\n"


def test_eof_mid_command_and_after() -> None:
    """EOF drops an unfinished command and gives ConnectionClosed, repeatedly."""
    conn = ServerConnection()
    conn.receive_data(b"a NOOP\r\nb NO")
    conn.receive_data(b"")
    assert conn.next_event() == c.Noop("a")
    assert conn.next_event() == c.ConnectionClosed()
    assert conn.next_event() == c.ConnectionClosed()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")


def test_eof_inside_literal() -> None:
    assert run([b"a LOGIN {10}\r\nabc"], eof=True) == [
        c.ContinuationNeeded("a", 10),
        c.ConnectionClosed(),
    ]


def test_transitions() -> None:
    """The server-reported transitions, and their misuse."""
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.selected()
    conn.authenticated()
    with pytest.raises(LocalProtocolError):
        conn.authenticated()
    conn.selected(read_only=True)
    assert conn.state is State.SELECTED and conn.read_only
    conn.selected()
    assert not conn.read_only
    conn.unselected()
    assert conn.state is State.AUTHENTICATED
    with pytest.raises(LocalProtocolError):
        conn.start_tls()
    conn.enabled(["imap4rev2"])
    assert conn.utf8 and "IMAP4REV2" in conn.enabled_extensions
    conn.logged_out()
    assert conn.state is State.LOGOUT
    assert conn.next_event() == c.ConnectionClosed()


def test_pipelined_commands_see_the_state_set_by_the_previous_one() -> None:
    """Commands are parsed lazily, so a pipelined SELECT after LOGIN is accepted."""
    conn = ServerConnection()
    conn.receive_data(b"a LOGIN u p\r\nb SELECT INBOX\r\n")
    results: list[object] = []
    drain(conn, results)  # type: ignore[arg-type]
    assert [type(r) for r in results] == [c.Login, c.Select]
