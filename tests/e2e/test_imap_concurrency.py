"""Many sessions on one mailbox, changing it at the same time, each over a real socket.

Every session keeps the picture RFC 9051 lets a client build from untagged responses
alone: EXISTS grows the list, ``n EXPUNGE`` removes position n (§7.5.1), a FETCH with
UID names the message at a position. The test pins that this picture never contradicts
what the server says later — a UID seen at sequence number n stays at n until an
EXPUNGE moves it — and that after a final NOOP every session's picture equals the
mailbox, while other sessions APPEND, STORE, EXPUNGE, UID EXPUNGE and MOVE concurrently.
"""

from __future__ import annotations

import random
import re
import threading

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap

pytestmark = [pytest.mark.timeout(60), pytest.mark.both_backends]

_EXISTS = re.compile(rb"^\* (\d+) EXISTS$")
_EXPUNGE = re.compile(rb"^\* (\d+) EXPUNGE$")
_FETCH_UID = re.compile(rb"^\* (\d+) FETCH \(.*\bUID (\d+)")


class Tracked:
    """A raw session plus the client's view of sequence numbers → UIDs."""

    def __init__(self, port: int) -> None:
        self.raw = RawImap(port)
        self.seqs: list[int | None] = []  # None: exists, UID not learnt yet
        self.errors: list[str] = []

    def run(self, text: str) -> list[bytes]:
        lines = self.raw.cmd(text)
        for line in lines[:-1]:
            self.apply(line, text)
        return lines

    def apply(self, line: bytes, during: str) -> None:
        if m := _EXPUNGE.match(line):
            n = int(m.group(1))
            if not 1 <= n <= len(self.seqs):
                self.errors.append(f"EXPUNGE {n} of {len(self.seqs)} during {during}")
            else:
                del self.seqs[n - 1]
        elif m := _EXISTS.match(line):
            n = int(m.group(1))
            if n < len(self.seqs):
                self.errors.append(f"EXISTS shrank {len(self.seqs)} -> {n} during {during}")
            self.seqs.extend([None] * (n - len(self.seqs)))
        elif m := _FETCH_UID.match(line):
            n, uid = int(m.group(1)), int(m.group(2))
            if not 1 <= n <= len(self.seqs):
                self.errors.append(f"FETCH {n} of {len(self.seqs)} during {during}")
                return
            known = self.seqs[n - 1]
            if known is not None and known != uid:
                self.errors.append(f"seq {n} was UID {known}, now {uid} during {during}")
            self.seqs[n - 1] = uid


def _msg(i: int) -> bytes:
    return b"From: x@example.test\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i)


def _worker(port: int, seed: int, rounds: int, out: list[Tracked]) -> None:
    rnd = random.Random(seed)
    t = Tracked(port)
    out.append(t)
    assert t.raw.login("alice@example.test", PASSWORD)[-1].split()[1] == b"OK"
    t.run("SELECT INBOX")
    for i in range(rounds):
        n = len(t.seqs)
        op = rnd.choice(["append", "store", "expunge", "uidexpunge", "fetch", "move", "noop"])
        if op == "append":
            data = _msg(seed * 1000 + i)
            t.run(f"APPEND INBOX {{{len(data)}+}}\r\n" + data.decode())
        elif op == "store" and n:
            a = rnd.randint(1, n)
            t.run(f"STORE {a}:{min(n, a + 3)} +FLAGS (\\Deleted)")
        elif op == "expunge":
            t.run("EXPUNGE")
        elif op == "uidexpunge":
            t.run("UID EXPUNGE 1:*")
        elif op == "fetch" and n:
            t.run(f"FETCH {rnd.randint(1, n)}:* (UID FLAGS)")
        elif op == "move" and n:
            t.run(f"MOVE {rnd.randint(1, n)} Archive")
        else:
            t.run("NOOP")


def test_concurrent_sessions_keep_consistent_sequence_numbers(server: RunningServer) -> None:
    """Eight sessions change INBOX at once; no session is ever told a sequence number that
    contradicts what it was told before, and each ends with the mailbox's true UID list."""
    port = server.port("imap")
    seed = RawImap(port)
    seed.login("alice@example.test", PASSWORD)
    for i in range(30):
        data = _msg(i)
        seed.cmd(f"APPEND INBOX {{{len(data)}+}}\r\n" + data.decode())
    seed.close()

    tracked: list[Tracked] = []
    failures: list[BaseException] = []

    def run(k: int) -> None:
        try:
            _worker(port, k + 1, 60, tracked)
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=50)
    assert not failures, failures

    truth = RawImap(port)
    try:
        truth.login("alice@example.test", PASSWORD)
        truth.cmd("SELECT INBOX")
        lines = truth.cmd("UID SEARCH ALL")
        all_uids = [int(x) for x in lines[0].split()[2:]]
        for t in tracked:
            t.run("NOOP")
            t.run("FETCH 1:* (UID)" if t.seqs else "NOOP")
            assert t.errors == []
            assert t.seqs == all_uids
    finally:
        truth.close()
        for t in tracked:
            t.raw.close()
