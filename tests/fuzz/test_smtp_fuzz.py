"""Fuzzing the SMTP core: any bytes, and mutations of real sessions, give only events,
NEED_DATA or RemoteProtocolError, never another exception, and the session never hangs
with data it could still process."""

from __future__ import annotations

import random
import time

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp.responses import Reply
from pillarbox.proto.smtp.server import Limits, ServerConnection, State

from ..proto.smtp.driver import accept_all

SEEDS = [
    b"EHLO c\r\nMAIL FROM:<a@x.test> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<b@x.test> NOTIFY=NEVER\r\n"
    b"DATA\r\nSubject: s\r\n\r\n..x\r\n.\r\nQUIT\r\n",
    b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x.test>\r\nBDAT 5\r\nabcdeBDAT 0 LAST\r\nRSET\r\n",
    b"EHLO c\r\nAUTH PLAIN\r\nAGEAYg==\r\nAUTH LOGIN YQ==\r\n*\r\nSTARTTLS\r\nEHLO d\r\n",
    'EHLO c\r\nMAIL FROM:<jörg@exämple.test> SMTPUTF8\r\nRCPT TO:<"a b"@[1.2.3.4]>\r\n'.encode(),
    b"HELO c\r\nVRFY x\r\nHELP\r\nNOOP\r\nRCPT TO:<@a.test,@b.test:c@d.test>\r\nDATA\r\n",
    b"LHLO c\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"
    b"S: s\n\n.\n..x\r\n.\nx\n.\r\nx\r\n.\r\nBDAT 4 LAST\r\na\nb\nQUIT\n",
]
TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"<",
    b">",
    b":",
    b"@",
    b" ",
    b"\x00",
    b"\xff",
    b"=",
    b"BDAT 3",
    b"DATA",
    b"LAST",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"\r\n.\r\n",
    b"\n.\n",
    b"LHLO x",
    b"+2B",
    b'"',
]


def policy(rng: random.Random, event: ev.Event) -> Reply | None:
    """Accept or refuse at random, as any front-end might."""
    reply = accept_all(event)
    if reply is None or rng.random() < 0.7:
        return reply
    return Reply.of(rng.choice([421, 451, 452, 501, 550, 554]), "5.0.0", "no")


def run_one(rng: random.Random, data: bytes) -> None:
    limits = Limits(
        max_line=rng.choice([16, 100, 4096]),
        max_message_size=rng.choice([10, 1000]),
        max_header_size=rng.choice([5, 500]),
        max_body_line=rng.choice([8, 1000]),
        max_recipients=rng.choice([1, 5]),
        max_errors=rng.choice([3, 50]),
        normalize_bare_lf=rng.random() < 0.5,
    )
    conn = ServerConnection(limits, lmtp=rng.random() < 0.3)
    pos = 0
    eof = False
    while True:
        if pos < len(data):
            step = rng.randint(1, 40)
            conn.receive_data(data[pos : pos + step])
            pos += step
        else:
            conn.receive_data(b"")
            eof = True
        for _ in range(10_000):
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                assert exc.reply_hint.endswith(b"\r\n")
                assert exc.reply_hint[:1] in (b"4", b"5")
                continue
            if event is ev.NEED_DATA:
                break
            assert isinstance(event, ev.Event.__args__)  # type: ignore[attr-defined]
            reply = policy(rng, event)
            if reply is not None:
                conn.send(reply)
                while conn.awaiting_reply:  # LMTP: one reply per recipient
                    conn.send(reply)
            if isinstance(event, ev.StartTls) and conn.state is State.TLS_PENDING:
                conn.tls_started()
        else:
            raise AssertionError("core looped without needing data")
        if eof:
            assert conn.state is State.CLOSED
            return


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        i = rng.randint(0, len(buf))
        if op < 0.3 and buf:
            del buf[i : i + rng.randint(1, 5)]
        elif op < 0.7:
            buf[i:i] = rng.choice(TOKENS)
        elif buf:
            buf[min(i, len(buf) - 1)] = rng.randrange(256)
    return bytes(buf)


def test_fuzz_core() -> None:
    """At least 20,000 cases (or ~30 s): random bytes, token soup and mutated sessions."""
    rng = random.Random(5321)
    deadline = time.monotonic() + 30
    cases = 0
    while cases < 20_000 or (cases < 60_000 and time.monotonic() < deadline):
        kind = cases % 3
        if kind == 0:
            data = rng.randbytes(rng.randint(0, 200))
        elif kind == 1:
            data = b"".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 40)))
        else:
            data = mutate(rng, rng.choice(SEEDS))
        try:
            run_one(rng, data)
        except Exception as exc:  # pragma: no cover - reports the failing input
            raise AssertionError(f"case {cases}: {data!r}") from exc
        cases += 1
        if cases >= 20_000 and time.monotonic() > deadline:
            break
    assert cases >= 20_000
