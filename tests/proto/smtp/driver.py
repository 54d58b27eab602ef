"""A test driver for the SMTP core: feeds a transcript in arbitrary pieces, answers each
event with a policy, and records what happened in a split-independent form."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.server import Limits, ServerConnection

Policy = Callable[[ev.Event], r.Reply | None]


def accept_all(event: ev.Event) -> r.Reply | None:
    """Reply as a permissive server would; None for events that take no reply."""
    match event:
        case ev.Hello():
            return r.Reply.of(250, None, "test.example")
        case ev.StartTls():
            return r.READY_TO_START_TLS
        case ev.Auth() | ev.AuthResponse():
            if isinstance(event, ev.AuthResponse) and event.cancelled:
                return r.AUTH_CANCELLED
            if isinstance(event, ev.Auth) and event.initial_response is None:
                return r.Reply.of(334, None, "")
            return r.AUTH_SUCCEEDED
        case ev.DataStart():
            return r.START_MAIL_INPUT
        case ev.Quit():
            return r.CLOSING
        case ev.BodyChunk() | ev.Bdat() | ev.ConnectionClosed():
            return None
        case _:
            return r.OK


class Run:
    """Outcome of one run: a list of records (event or ("error", reply)) and the output."""

    def __init__(self) -> None:
        self.records: list[object] = []
        self.output = bytearray()

    def add(self, record: object) -> None:
        # Merge consecutive body chunks: how the body is cut depends on the split.
        if (
            isinstance(record, ev.BodyChunk)
            and self.records
            and isinstance(self.records[-1], ev.BodyChunk)
        ):
            self.records[-1] = ev.BodyChunk(self.records[-1].data + record.data)
        else:
            self.records.append(record)

    @property
    def events(self) -> list[object]:
        return [x for x in self.records if not isinstance(x, tuple)]

    @property
    def errors(self) -> list[bytes]:
        return [x[1] for x in self.records if isinstance(x, tuple)]

    @property
    def body(self) -> bytes:
        return b"".join(x.data for x in self.records if isinstance(x, ev.BodyChunk))


def drive(
    conn: ServerConnection,
    pieces: Iterable[bytes],
    policy: Policy = accept_all,
    *,
    eof: bool = True,
    on_event: Callable[[ServerConnection, ev.Event], None] | None = None,
) -> Run:
    run = Run()

    def pump() -> bool:
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                run.add(("error", exc.reply_hint))
                run.output += exc.reply_hint
                if exc.fatal:
                    return False
                continue
            if event is ev.NEED_DATA:
                return True
            run.add(event)
            if on_event is not None:
                on_event(conn, event)
            reply = policy(event)
            if reply is not None:
                run.output += conn.send(reply)
                while conn.awaiting_reply:  # LMTP: one reply per recipient
                    run.output += conn.send(reply)
            if isinstance(event, ev.StartTls) and reply is not None and reply.code == 220:
                conn.tls_started()
            if isinstance(event, ev.ConnectionClosed):
                return False

    for piece in pieces:
        conn.receive_data(piece)
        if not pump():
            return run
    if eof:
        conn.receive_data(b"")
        pump()
    return run


def splits(data: bytes) -> Iterable[list[bytes]]:
    """The whole transcript, then every two-piece split, then byte by byte."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def new(*, lmtp: bool = False, **limits: int) -> ServerConnection:
    return ServerConnection(Limits(**limits), lmtp=lmtp)
