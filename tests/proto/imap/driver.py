"""Test driver: runs a `ServerConnection` over input chunks the way a server would.

It applies the transitions a successful server would report (LOGIN → authenticated,
SELECT → selected, IDLE → idle_accepted, ...) so transcripts read like real sessions, and
records every event and every error reply in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import Limits, ServerConnection, State


@dataclass(frozen=True)
class Reply:
    """An error the core raised: the exact reply bytes and whether it was fatal."""

    reply: bytes
    fatal: bool = False


Outcome = c.Event | Reply


def react(conn: ServerConnection, ev: c.Event, out: list[bytes] | None = None) -> None:
    """What a server that says yes to everything would tell the core."""
    if isinstance(ev, c.Login):
        conn.authenticated()
    elif isinstance(ev, c.Authenticate):
        if ev.initial_response is None:
            sent = conn.auth_challenge(b"")
            if out is not None:
                out.append(sent)
        else:
            conn.authenticated()
    elif isinstance(ev, c.AuthenticateResponse):
        if not ev.cancelled:
            conn.authenticated()
    elif isinstance(ev, c.Select | c.Examine):
        conn.selected(read_only=isinstance(ev, c.Examine))
    elif isinstance(ev, c.Close | c.Unselect):
        conn.unselected()
    elif isinstance(ev, c.Idle):
        sent = conn.idle_accepted()
        if out is not None:
            out.append(sent)
    elif isinstance(ev, c.Enable):
        conn.enabled(ev.capabilities)
    elif isinstance(ev, c.Logout):
        conn.logged_out()


def drain(conn: ServerConnection, results: list[Outcome], *, auto: bool = True) -> None:
    while True:
        try:
            ev = conn.next_event()
        except RemoteProtocolError as e:
            results.append(Reply(e.reply_hint, e.fatal))
            if e.fatal:
                return
            continue
        if ev is c.NEED_DATA:
            return
        results.append(ev)
        if isinstance(ev, c.ConnectionClosed):
            return
        if auto:
            react(conn, ev)


def run(
    chunks: Iterable[bytes],
    *,
    limits: Limits | None = None,
    state: State = State.NOT_AUTHENTICATED,
    eof: bool = False,
    auto: bool = True,
    utf8: bool = False,
) -> list[Outcome]:
    """Feed `chunks` one by one, draining events after each; return everything seen."""
    conn = new_connection(limits=limits, state=state, utf8=utf8)
    results: list[Outcome] = []
    for chunk in chunks:
        if results and isinstance(results[-1], Reply) and results[-1].fatal:
            break
        if results and isinstance(results[-1], c.ConnectionClosed):
            break
        if chunk:  # b"" would mean EOF
            conn.receive_data(chunk)
            drain(conn, results, auto=auto)
    if eof and not (results and isinstance(results[-1], c.ConnectionClosed | Reply)):
        conn.receive_data(b"")
        drain(conn, results, auto=auto)
    return results


def new_connection(
    *, limits: Limits | None = None, state: State = State.NOT_AUTHENTICATED, utf8: bool = False
) -> ServerConnection:
    conn = ServerConnection(limits)
    if state is not State.NOT_AUTHENTICATED:
        conn.authenticated()
    if state is State.SELECTED:
        conn.selected()
    if utf8:
        conn.enabled(["UTF8=ACCEPT"])
    return conn


def parse_one(wire: bytes, *, state: State = State.SELECTED, utf8: bool = False) -> Outcome:
    """The single outcome of one complete command (continuations skipped)."""
    results = [
        r
        for r in run([wire], state=state, utf8=utf8)
        if not isinstance(r, c.ContinuationNeeded | c.ConnectionClosed)
    ]
    assert len(results) == 1, results
    return results[0]


def every_split(data: bytes) -> Iterable[list[bytes]]:
    """The input whole, cut at each byte boundary, and fed one byte at a time."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]
