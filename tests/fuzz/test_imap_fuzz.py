"""Fuzz the IMAP core: any bytes give events, NEED_DATA or RemoteProtocolError, nothing else.

A plain random loop with a fixed seed (reproducible) runs up to 100,000 cases or
PILLARBOX_FUZZ_SECONDS (default 60) seconds, whichever comes first. Inputs are random
bytes, random IMAP-ish tokens, and mutations (byte flips, insertions, deletions, splices,
literal-count edits) of a corpus of valid sessions; they are fed in random chunks to a
connection in a random state, with random small limits, and the driver reacts like a
server (authenticated after LOGIN, idle_accepted after IDLE, ...). Any other exception, or
a `next_event` loop that never asks for data, fails the test.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.connection import Limits, ServerConnection, State

CORPUS = [
    b"a1 CAPABILITY\r\na2 LOGIN {3}\r\nbob {6+}\r\nsecret\r\n",
    b"a AUTHENTICATE PLAIN\r\nAGJvYgBwdw==\r\nb AUTHENTICATE PLAIN =\r\nc AUTHENTICATE X\r\n*\r\n",
    b'a SELECT "INBOX" (CONDSTORE QRESYNC (1 2 1:5 (1,2 3,4)))\r\nb EXAMINE x\r\n',
    b"a UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> BINARY[1]"
    b" BINARY.SIZE[2] ENVELOPE) (CHANGEDSINCE 5 VANISHED)\r\n",
    b'a SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR (FROM "bob" SEEN) NOT 1:5,7 UID $'
    b' SINCE 1-Feb-2024 MODSEQ "/flags/\\\\draft" all 5 HEADER X-A {2}\r\nab\r\n',
    b"a STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen foo)\r\n",
    b'a APPEND INBOX (\\Seen) "17-Jul-1996 02:44:25 -0700" {3+}\r\nabc ~{2+}\r\nx\x00'
    b" UTF8 (~{1}\r\nz)\r\n",
    b'a LIST (SUBSCRIBED) "" ("INBOX" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n',
    b'a IDLE\r\nDONE\r\nb ENABLE UTF8=ACCEPT\r\nc ID ("name" NIL)\r\nd NAMESPACE\r\n',
    b"a CREATE x (USE (\\Drafts))\r\nb RENAME a b\r\nc STATUS a (MESSAGES SIZE)\r\n",
    b"a COPY 1 x\r\nb UID MOVE 2:* y\r\nc UID EXPUNGE 4\r\nd CLOSE\r\ne LOGOUT\r\n",
    b"a STARTTLS\r\nb NOOP\r\n",
]
TOKENS = [
    b" ", b"\r\n", b"\n", b"(", b")", b"[", b"]", b"<", b">", b"{", b"}", b"{5}\r\n",
    b"{3+}\r\n", b"~{2}\r\n", b"{99999999999999999999999}\r\n", b'"', b"\\", b"*", b"$",
    b":", b",", b"1", b"0", b"4294967296", b"NIL", b"UID", b"FETCH", b"SEARCH", b"BODY[",
    b"NOT ", b"OR ", b"a ", b"LOGIN", b"SELECT", b"APPEND", b"\xc3\xa9", b"\xff", b"\x00",
]  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        pos = rng.randint(0, len(buf))
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 3:
            other = rng.choice(CORPUS)
            a = rng.randint(0, len(other))
            buf[pos:pos] = other[a : a + rng.randint(1, 40)]
        elif op == 4:
            buf[pos:pos] = b"{%d%s}\r\n" % (rng.randint(0, 70), rng.choice([b"", b"+"]))
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
    return bytes(buf)


def make_input(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        return b"".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 40)))
    return mutate(rng, b"".join(rng.choice(CORPUS) for _ in range(rng.randint(1, 3))))


def react(conn: ServerConnection, ev: object, rng: random.Random) -> None:
    """A server that randomly says yes: only calls that are legal for the event."""
    if isinstance(ev, c.Login) and rng.random() < 0.7:
        conn.authenticated()
    elif isinstance(ev, c.Authenticate):
        if rng.random() < 0.7:
            conn.auth_challenge(b"x")
    elif isinstance(ev, c.AuthenticateResponse):
        if not ev.cancelled and rng.random() < 0.5:
            conn.auth_challenge(b"")
        elif not ev.cancelled and conn.state is State.NOT_AUTHENTICATED:
            conn.authenticated()
    elif isinstance(ev, c.Select | c.Examine):
        if rng.random() < 0.8:
            conn.selected(read_only=isinstance(ev, c.Examine))
        else:
            conn.unselected()
    elif isinstance(ev, c.Close | c.Unselect):
        conn.unselected()
    elif isinstance(ev, c.Idle):
        if rng.random() < 0.8:
            conn.idle_accepted()
    elif isinstance(ev, c.Enable):
        conn.enabled(ev.capabilities)
    elif isinstance(ev, c.StartTls):
        conn.start_tls()
    elif isinstance(ev, c.Logout) and rng.random() < 0.5:
        conn.logged_out()


def run_case(rng: random.Random, data: bytes) -> None:
    if rng.random() < 0.5:
        limits = Limits()
    else:
        limits = Limits(
            max_line_length=rng.randint(8, 200),
            max_literal_size=rng.randint(0, 64),
            max_unauthenticated_literal_size=rng.randint(0, 64),
            max_command_size=rng.randint(16, 400),
            max_literals=rng.randint(0, 4),
            max_nesting_depth=rng.randint(1, 8),
            max_discard_size=rng.randint(0, 100),
            literal_minus=rng.random() < 0.5,
        )
    conn = ServerConnection(limits)
    state = rng.randrange(3)
    if state:
        conn.authenticated()
    if state == 2:
        conn.selected()
    if rng.random() < 0.3:
        conn.enabled(["UTF8=ACCEPT"])
    pos = 0
    while pos <= len(data):
        step = rng.randint(1, 64)
        chunk = data[pos : pos + step]
        pos += step
        if chunk:
            conn.receive_data(chunk)
        elif pos > len(data) and rng.random() < 0.5:
            conn.receive_data(b"")
        for _ in range(10_000):
            try:
                ev = conn.next_event()
            except RemoteProtocolError as e:
                assert isinstance(e.reply_hint, bytes) and e.reply_hint.endswith(b"\r\n")
                assert e.reply_hint.count(b"\n") == 1
                if e.fatal:
                    return
                continue
            if ev is c.NEED_DATA:
                break
            assert isinstance(
                ev,
                c.Command
                | c.ContinuationNeeded
                | c.AuthenticateResponse
                | c.Done
                | c.ConnectionClosed,
            )
            if isinstance(ev, c.ConnectionClosed):
                return
            react(conn, ev, rng)
        else:
            raise AssertionError("next_event never returned NEED_DATA")


@pytest.mark.slow
def test_imap_core_fuzz() -> None:
    """Random and mutated input never raises anything but RemoteProtocolError."""
    budget = float(os.environ.get("PILLARBOX_FUZZ_SECONDS", "60"))
    rng = random.Random(20240611)
    deadline = time.monotonic() + budget
    for case in range(100_000):
        if time.monotonic() > deadline:
            break
        seed = rng.getrandbits(64)
        case_rng = random.Random(seed)
        data = make_input(case_rng)
        try:
            run_case(case_rng, data)
        except Exception as e:  # pragma: no cover - reported with the reproducer
            raise AssertionError(f"case {case} seed {seed} input {data!r}") from e
