"""Helpers for the CONDSTORE / QRESYNC tests (RFC 7162): a logged-in raw client and
parsers for the responses those tests compare exactly (a helper module, no tests)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from tests.e2e.conftest import PASSWORD
from tests.e2e.test_imap_raw import RawImap

MSG = b"From: a@example.test\r\nSubject: hi\r\n\r\nhello\r\n"

_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_MODSEQ = re.compile(rb"\bMODSEQ \((\d+)\)")
_CODE_NUMBER = re.compile(rb"\[(HIGHESTMODSEQ|UIDVALIDITY|UIDNEXT) (\d+)\]")


def logged_in(port: int, user: str = "alice@example.test") -> RawImap:
    c = RawImap(port)
    lines = c.login(user, PASSWORD)
    assert lines[-1].split()[1] == b"OK", lines
    return c


def append(c: RawImap, box: str = "INBOX", data: bytes = MSG, flags: str = "") -> int:
    """APPEND one message; its UID (RFC 4315 APPENDUID)."""
    lines = c.cmd(f'APPEND "{box}" {flags}{{{len(data)}+}}\r\n'.encode() + data)
    m = re.search(rb"APPENDUID \d+ (\d+)", lines[-1])
    assert m, lines
    return int(m.group(1))


def ok(lines: list[bytes]) -> list[bytes]:
    """The lines, after checking the command completed with OK."""
    assert lines[-1].split()[1] == b"OK", lines
    return lines


def untagged(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.startswith(b"* ")]


def code_number(lines: list[bytes], code: str) -> int:
    """The number of ``[CODE n]`` in the lines (HIGHESTMODSEQ, UIDVALIDITY, UIDNEXT)."""
    for line in lines:
        for name, value in _CODE_NUMBER.findall(line):
            if name.decode() == code:
                return int(value)
    raise AssertionError(f"no {code} in {lines!r}")


def fetches(lines: list[bytes]) -> dict[int, tuple[int, frozenset[bytes], int | None]]:
    """UID -> (sequence number, flags, MODSEQ or None) of the FETCH responses."""
    out: dict[int, tuple[int, frozenset[bytes], int | None]] = {}
    for line in lines:
        m = _FETCH.match(line)
        if not m:
            continue
        body = m.group(2)
        uid = _UID.search(body)
        flags = _FLAGS.search(body)
        modseq = _MODSEQ.search(body)
        assert uid and flags, line
        out[int(uid.group(1))] = (
            int(m.group(1)),
            frozenset(flags.group(1).split()),
            int(modseq.group(1)) if modseq else None,
        )
    return out


def vanished(lines: list[bytes], *, earlier: bool) -> list[int]:
    """UIDs of the ``* VANISHED [(EARLIER)]`` responses, expanded."""
    prefix = b"* VANISHED (EARLIER) " if earlier else b"* VANISHED "
    out: list[int] = []
    for line in lines:
        if not line.startswith(prefix) or (not earlier and b"(EARLIER)" in line):
            continue
        for part in line[len(prefix) :].split(b","):
            lo, _, hi = part.partition(b":")
            out.extend(range(int(lo), int(hi or lo) + 1))
    return sorted(out)


def state(port: int, box: str = "INBOX") -> dict[int, tuple[frozenset[bytes], int]]:
    """The truth, from a fresh session: UID -> (flags, MODSEQ) of every message."""
    c = logged_in(port)
    try:
        ok(c.cmd(f"EXAMINE {box}"))
        lines = ok(c.cmd("UID FETCH 1:* (FLAGS MODSEQ)"))
        out = {}
        for uid, (_seq, flags, modseq) in fetches(lines).items():
            assert modseq is not None
            out[uid] = (flags - {b"\\Recent"}, modseq)  # a session's flag, not stored
        return out
    finally:
        c.close()


def read_until(c: RawImap, done: Callable[[list[bytes]], bool], timeout: float = 20) -> list[bytes]:
    """Untagged lines pushed to an idling client, until `done(lines)` or the deadline."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while not done(lines):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; got {lines!r}"
        c.sock.settimeout(left)
        lines.append(c.line())
    return lines
