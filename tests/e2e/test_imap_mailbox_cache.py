"""The per-session mailbox name cache never serves a mailbox that was deleted or renamed.

A session resolves a name once (SELECT, APPEND, STATUS, COPY target) and keeps it; another
session of the same account then deletes or renames that mailbox. The first session's
next command on the old name must answer exactly as if nothing had been cached: APPEND
gets ``NO [TRYCREATE]``, SELECT and STATUS ``NO [NONEXISTENT]``, COPY ``NO [TRYCREATE]``,
and the new name works at once (with the new UIDVALIDITY after a RENAME). The session's
own CREATE/DELETE/RENAME are seen by its next command too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.timeout(60)

_MSG = b"From: x@example.test\r\nSubject: cache\r\n\r\nbody\r\n"
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def _session(port: int) -> RawImap:
    raw = RawImap(port)
    assert raw.login("alice@example.test", PASSWORD)[-1].split()[1] == b"OK"
    return raw


@pytest.fixture
def sessions(server: RunningServer) -> Iterator[tuple[RawImap, RawImap]]:
    """Two logged-in sessions of the same account."""
    a, b = _session(server.port("imap")), _session(server.port("imap"))
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _append(raw: RawImap, name: str) -> bytes:
    return raw.cmd(f"APPEND {name} {{{len(_MSG)}+}}\r\n".encode() + _MSG)[-1]


def _ok(line: bytes) -> bool:
    return line.split()[1] == b"OK"


def _uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        if m := _UIDVALIDITY.search(line):
            return int(m.group(1))
    raise AssertionError(lines)


def test_renamed_mailbox_is_not_served_from_the_cache(
    sessions: tuple[RawImap, RawImap],
) -> None:
    a, b = sessions
    assert _ok(a.cmd("CREATE Work")[-1])
    # b resolves (and caches) "Work" through every command that looks a name up.
    assert _ok(_append(b, "Work"))
    old = b.cmd("SELECT Work")
    assert _ok(old[-1])
    assert _ok(b.cmd("STATUS Work (MESSAGES)")[-1])
    assert _ok(b.cmd("COPY 1 Work")[-1])
    assert _ok(b.cmd("UNSELECT")[-1])

    assert _ok(a.cmd("RENAME Work Play")[-1])

    line = _append(b, "Work")
    assert b"NO [TRYCREATE]" in line, line
    line = b.cmd("SELECT Work")[-1]
    assert b"NO [NONEXISTENT]" in line, line
    line = b.cmd("STATUS Work (MESSAGES)")[-1]
    assert b"NO [NONEXISTENT]" in line, line
    assert _ok(_append(b, "INBOX"))
    assert _ok(b.cmd("SELECT INBOX")[-1])
    line = b.cmd("COPY 1 Work")[-1]
    assert b"NO [TRYCREATE]" in line, line

    # The new name is found at once, with the new UIDVALIDITY (RFC 9051 §2.3.1.1).
    assert _ok(_append(b, "Play"))
    new = b.cmd("SELECT Play")
    assert _ok(new[-1])
    assert _uidvalidity(new) != _uidvalidity(old)
    assert b"* 3 EXISTS" in new, new  # the APPEND before and after the RENAME, + COPY


def test_deleted_mailbox_is_not_served_from_the_cache(
    sessions: tuple[RawImap, RawImap],
) -> None:
    a, b = sessions
    assert _ok(a.cmd("CREATE Gone")[-1])
    assert _ok(_append(b, "Gone"))
    assert _ok(b.cmd("EXAMINE Gone")[-1])
    assert _ok(b.cmd("UNSELECT")[-1])

    assert _ok(a.cmd("DELETE Gone")[-1])

    line = _append(b, "Gone")
    assert b"NO [TRYCREATE]" in line, line
    line = b.cmd("SELECT Gone")[-1]
    assert b"NO [NONEXISTENT]" in line, line

    # Created again by the other session: a different mailbox, found at once, empty.
    assert _ok(a.cmd("CREATE Gone")[-1])
    again = b.cmd("SELECT Gone")
    assert _ok(again[-1])
    assert b"* 0 EXISTS" in again, again


def test_own_delete_and_rename_are_seen_by_the_next_command(
    sessions: tuple[RawImap, RawImap],
) -> None:
    a, _ = sessions
    assert _ok(a.cmd("CREATE Mine")[-1])
    assert _ok(_append(a, "Mine"))
    assert _ok(a.cmd("RENAME Mine Yours")[-1])
    line = _append(a, "Mine")
    assert b"NO [TRYCREATE]" in line, line
    assert _ok(_append(a, "Yours"))
    assert _ok(a.cmd("DELETE Yours")[-1])
    line = a.cmd("EXAMINE Yours")[-1]
    assert b"NO [NONEXISTENT]" in line, line
