"""The POP3 core: framing, syntax and the state table, fed at every byte boundary."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable

import pytest

from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.pop3 import NEED_DATA, Limits, ServerConnection, State
from pillarbox.proto.pop3.events import (
    Auth,
    AuthResponse,
    Capa,
    ConnectionClosed,
    Dele,
    Event,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)

Outcome = Event | bytes  # an event, or the -ERR line of a RemoteProtocolError


def _login_driver(conn: ServerConnection, ev: Event) -> None:
    """What a server does for these tests: any PASS or AUTH with a response logs in."""
    if isinstance(ev, Pass) or (isinstance(ev, Auth) and ev.initial_response is not None):
        conn.authenticated()
    elif isinstance(ev, Auth):
        conn.auth_challenge(b"")
    elif isinstance(ev, AuthResponse) and not ev.cancelled:
        conn.authenticated()
    elif isinstance(ev, Stls):
        conn.tls_started()


def drain(
    conn: ServerConnection, driver: Callable[[ServerConnection, Event], None]
) -> list[Outcome]:
    out: list[Outcome] = []
    while True:
        try:
            ev = conn.next_event()
        except RemoteProtocolError as exc:
            out.append(exc.reply_hint)
            if exc.fatal:
                return out
            continue
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if isinstance(ev, ConnectionClosed):
            return out
        driver(conn, ev)


def run(
    chunks: Iterable[bytes],
    driver: Callable[[ServerConnection, Event], None] = _login_driver,
    **kwargs: bool,
) -> list[Outcome]:
    conn = ServerConnection(**kwargs)  # type: ignore[arg-type]
    out: list[Outcome] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        out += drain(conn, driver)
    conn.receive_data(b"")
    out += drain(conn, driver)
    return out


def every_split(data: bytes, **kwargs: bool) -> list[Outcome]:
    """The outcome of `data`, checked to be the same however the bytes are cut."""
    whole = run([data], **kwargs)
    for i in range(1, len(data)):
        assert run([data[:i], data[i:]], **kwargs) == whole, f"split at {i}"
    assert run([data[i : i + 1] for i in range(len(data))], **kwargs) == whole
    return whole


def test_full_session_transcript() -> None:
    """A typical pipelined session gives the same events at every split point."""
    data = (
        b"CAPA\r\nUSER alice@example.test\r\nPASS secret with spaces \r\n"
        b"STAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nuidl 1\r\nRETR 1\r\nTOP 1 0\r\n"
        b"DELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n"
    )
    assert every_split(data) == [
        Capa(),
        User("alice@example.test"),
        Pass("alice@example.test", "secret with spaces "),
        Stat(),
        List(None),
        List(2),
        Uidl(None),
        Uidl(1),
        Retr(1),
        Top(1, 0),
        Dele(1),
        Noop(),
        Rset(),
        Quit(),
        ConnectionClosed(),
    ]


def test_quit_enters_update_only_from_transaction() -> None:
    """RFC 1939 §6: QUIT after login means UPDATE; before login it just closes."""
    conn = ServerConnection()
    conn.receive_data(b"QUIT\r\n")
    assert conn.next_event() == Quit()
    assert conn.state is State.CLOSED
    conn = ServerConnection()
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    conn.next_event()
    conn.next_event()
    conn.authenticated()
    conn.receive_data(b"QUIT\r\nSTAT\r\n")
    assert conn.next_event() == Quit()
    assert conn.state is State.UPDATE
    assert conn.next_event() is NEED_DATA  # nothing after QUIT is a command


def test_wrong_state_and_unknown_commands_are_errors_and_session_goes_on() -> None:
    """Transaction commands before login, login commands after, unknown keywords: -ERR."""
    out = every_split(
        b"STAT\r\nRETR 1\r\nAPOP a b\r\nXYZZY\r\nUSER a\r\nPASS b\r\n"
        b"USER a\r\nPASS b\r\nSTLS\r\nAUTH PLAIN\r\nSTAT\r\n"
    )
    assert out == [
        b"-ERR STAT is not valid in this state\r\n",
        b"-ERR RETR is not valid in this state\r\n",
        b"-ERR Unknown command\r\n",
        b"-ERR Unknown command\r\n",
        User("a"),
        Pass("a", "b"),
        b"-ERR USER is not valid in this state\r\n",
        b"-ERR PASS is not valid in this state\r\n",
        b"-ERR STLS is not valid in this state\r\n",
        b"-ERR AUTH is not valid in this state\r\n",
        Stat(),
        ConnectionClosed(),
    ]


def test_pass_only_right_after_user() -> None:
    """RFC 1939 §7: PASS is valid only immediately after USER; anything between voids it."""
    out = every_split(b"PASS x\r\nUSER a\r\nCAPA\r\nPASS x\r\nUSER b\r\nUSER c\r\nPASS y\r\n")
    assert out == [
        b"-ERR Send USER first\r\n",
        User("a"),
        Capa(),
        b"-ERR Send USER first\r\n",
        User("b"),
        User("c"),
        Pass("c", "y"),
        ConnectionClosed(),
    ]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"LIST 0", b"-ERR Invalid message number\r\n"),
        (b"LIST x", b"-ERR Invalid message number\r\n"),
        (b"LIST 1 2", b"-ERR Syntax: LIST [msg]\r\n"),
        (b"RETR", b"-ERR Syntax: RETR msg\r\n"),
        (b"RETR -1", b"-ERR Invalid message number\r\n"),
        (b"RETR 99999999999999999999", b"-ERR Invalid message number\r\n"),
        (b"DELE", b"-ERR Syntax: DELE msg\r\n"),
        (b"TOP 1", b"-ERR Syntax: TOP msg n\r\n"),
        (b"TOP 1 x", b"-ERR Invalid number of lines\r\n"),
        (b"STAT 1", b"-ERR Syntax: STAT takes no argument\r\n"),
        (b"NOOP x", b"-ERR Syntax: NOOP takes no argument\r\n"),
    ],
)
def test_bad_arguments_in_transaction(line: bytes, reply: bytes) -> None:
    """Malformed arguments get a clear -ERR and the next command still works."""
    out = every_split(b"USER a\r\nPASS b\r\n" + line + b"\r\nNOOP\r\n")
    assert out[2:] == [reply, Noop(), ConnectionClosed()]


def test_commands_are_case_insensitive_and_lf_is_accepted() -> None:
    """RFC 1939 §3: keywords are case-insensitive; a bare LF ends a line too."""
    out = every_split(b"user a\npass b\nlist 1\r\ntop 2 10\n")
    assert out == [User("a"), Pass("a", "b"), List(1), Top(2, 10), ConnectionClosed()]


def test_overlong_line_is_refused_and_the_next_line_works() -> None:
    """A line over the limit is answered once and skipped, whatever its length."""
    data = b"USER " + b"x" * 2000 + b"\r\nCAPA\r\n"
    conn_out = run([data], driver=_login_driver)
    assert conn_out == [b"-ERR Line too long\r\n", Capa(), ConnectionClosed()]
    for size in (100, 511, 512, 513, 1000):
        assert run([data[i : i + size] for i in range(0, len(data), size)]) == conn_out


def test_too_many_bad_commands_is_fatal() -> None:
    """A client that sends only garbage is told so and the core stops."""
    conn = ServerConnection(Limits(max_bad_commands=3))
    conn.receive_data(b"X\r\nY\r\nZ\r\nCAPA\r\n")
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as info:
            conn.next_event()
        assert not info.value.fatal
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.fatal
    assert info.value.reply_hint.startswith(b"-ERR Too many bad commands")
    assert conn.next_event() is NEED_DATA


def test_auth_plain_with_initial_response() -> None:
    """RFC 5034 §4: AUTH PLAIN <base64> in one line; "=" is an empty response."""
    b64 = base64.b64encode(b"\0alice\0pw")
    out = every_split(b"AUTH plain " + b64 + b"\r\nSTAT\r\n")
    assert out == [Auth("PLAIN", b"\0alice\0pw"), Stat(), ConnectionClosed()]
    out = every_split(b"AUTH PLAIN =\r\n")
    assert out[0] == Auth("PLAIN", b"")


def test_auth_challenge_round_trip_and_cancel() -> None:
    """Without an initial response the server challenges; "*" cancels; bad base64 is -ERR."""
    b64 = base64.b64encode(b"\0alice\0pw")
    data = b"AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n!!!\r\nAUTH PLAIN\r\n" + b64 + b"\r\nSTAT\r\n"
    out = every_split(data)
    assert out == [
        Auth("PLAIN", None),
        AuthResponse(b"", cancelled=True),
        Auth("PLAIN", None),
        b"-ERR Invalid base64 data\r\n",
        Auth("PLAIN", None),
        AuthResponse(b"\0alice\0pw"),
        Stat(),
        ConnectionClosed(),
    ]
    assert every_split(b"AUTH\r\nAUTH PLAIN x y\r\nAUTH PL@IN\r\nAUTH PLAIN ab$=\r\n") == [
        b"-ERR Syntax: AUTH mechanism [initial-response]\r\n",
        b"-ERR Syntax: AUTH mechanism [initial-response]\r\n",
        b"-ERR Syntax: AUTH mechanism [initial-response]\r\n",
        b"-ERR Invalid base64 data\r\n",
        ConnectionClosed(),
    ]


def test_stls_drops_pipelined_plaintext() -> None:
    """RFC 2595 §4: bytes pipelined behind STLS never become commands after the upgrade."""
    conn = ServerConnection(stls_available=True)
    conn.receive_data(b"STLS\r\nUSER mallory\r\nPASS x\r\n")
    assert conn.next_event() == Stls()
    assert conn.next_event() is NEED_DATA  # paused until the handshake is done
    conn.tls_started()
    assert conn.next_event() is NEED_DATA
    assert conn.tls_active
    conn.receive_data(b"STLS\r\nCAPA\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.reply_hint == b"-ERR Command not permitted when TLS active\r\n"
    assert conn.next_event() == Capa()


def test_stls_unavailable_or_already_active() -> None:
    """Without a TLS context, or on an implicit-TLS listener, STLS is refused."""
    assert every_split(b"STLS\r\nCAPA\r\n") == [
        b"-ERR TLS is not available\r\n",
        Capa(),
        ConnectionClosed(),
    ]
    assert every_split(b"STLS\r\n", tls_active=True, stls_available=True)[0] == (
        b"-ERR Command not permitted when TLS active\r\n"
    )


def test_utf8_mode_and_utf8_user_names() -> None:
    """RFC 6856 §2: UTF8 before login; user names and passwords may be UTF-8."""
    data = "UTF8\r\nUSER jürgen@example.test\r\nPASS pässword\r\n".encode()
    assert every_split(data) == [
        Utf8(),
        User("jürgen@example.test"),
        Pass("jürgen@example.test", "pässword"),
        ConnectionClosed(),
    ]
    assert every_split(b"USER \xff\r\n")[0] == b"-ERR User name is not valid UTF-8\r\n"


def test_eof_mid_line_and_misuse() -> None:
    """A partial line at EOF is dropped; the server misusing the core is a local error."""
    assert run([b"STAT\r\nNOO"]) == [
        b"-ERR STAT is not valid in this state\r\n",
        ConnectionClosed(),
    ]
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    conn = ServerConnection()
    conn.authenticated()
    with pytest.raises(LocalProtocolError):
        conn.authenticated()
    with pytest.raises(LocalProtocolError):
        conn.auth_challenge()


def test_secrets_stay_out_of_reprs() -> None:
    """Events that carry passwords never show them when logged."""
    assert "hunter2" not in repr(Pass("a", "hunter2"))
    assert "hunter2" not in repr(Auth("PLAIN", b"\0a\0hunter2"))
    assert "hunter2" not in repr(AuthResponse(b"\0a\0hunter2"))
