"""Any bytes into the POP3 core give events, NEED_DATA or RemoteProtocolError, nothing else.

20,000 generated inputs (mixing real command words with random bytes so the fuzzing reaches
every state), each fed in random chunks, with a driver that logs in, answers AUTH with a
challenge and completes STLS as a server would.
"""

from __future__ import annotations

import random

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.pop3 import NEED_DATA, Limits, ServerConnection, State
from pillarbox.proto.pop3 import events as ev

CASES = 20_000
COMMANDS = [
    b"USER", b"PASS", b"AUTH", b"STLS", b"UTF8", b"CAPA", b"QUIT", b"STAT", b"LIST",
    b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"APOP", b"user", b"XYZ", b"",
]  # fmt: skip
ARGS = [
    b"PLAIN", b"*", b"=", b"1", b"0", b"7", b"99999999999", b"-1", b"AGFsaWNlAHB3",
    b"alice@example.test", b"\x00", b"\xff\xfe", "ü".encode(), b"",
]  # fmt: skip
ENDINGS = [b"\r\n"] * 8 + [b"\n", b"\r", b""]


def _line(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        return rng.randbytes(rng.randint(0, 20))
    if roll < 0.12:
        return b"x" * rng.randint(60, 700) + b"\r\n"
    parts = [rng.choice(COMMANDS)]
    parts += [rng.choice(ARGS) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    return rng.choice([b" ", b"  "]).join(parts) + rng.choice(ENDINGS)


def _input(rng: random.Random) -> bytes:
    return b"".join(_line(rng) for _ in range(rng.randint(0, 25)))


EVENT_TYPES = tuple(
    getattr(ev, name)
    for name in ev.__dict__
    if isinstance(getattr(ev, name), type)
    and getattr(ev, name).__module__ == ev.__name__
    and not name.startswith("_")
)


def _drive(conn: ServerConnection, rng: random.Random, seen: set[type]) -> None:
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            assert exc.reply_hint.startswith(b"-ERR ") and exc.reply_hint.endswith(b"\r\n")
            assert len(exc.reply_hint) <= 512
            if exc.fatal:
                return
            continue
        if event is NEED_DATA:
            return
        assert isinstance(event, EVENT_TYPES), event
        seen.add(type(event))
        if isinstance(event, ev.ConnectionClosed):
            return
        if isinstance(event, ev.Pass | ev.AuthResponse) and rng.random() < 0.5:
            if conn.state is State.AUTHORIZATION:
                conn.authenticated()
        elif isinstance(event, ev.Auth) and rng.random() < 0.5:
            conn.auth_challenge(b"")
        elif isinstance(event, ev.Stls):
            conn.tls_started()


@pytest.mark.slow
def test_random_bytes_never_break_the_core() -> None:
    """Only events, NEED_DATA and RemoteProtocolError ever come out of the core."""
    rng = random.Random(1939)
    seen: set[type] = set()
    for _ in range(CASES):
        data = _input(rng)
        conn = ServerConnection(
            Limits(max_line_length=rng.choice([64, 512])),
            stls_available=rng.random() < 0.5,
        )
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 40)
            conn.receive_data(data[pos : pos + step])
            pos += step
            _drive(conn, rng, seen)
        conn.receive_data(b"")
        _drive(conn, rng, seen)
    # The generator reaches every state: every event type came out at least once.
    assert seen == set(EVENT_TYPES), set(EVENT_TYPES) - seen
