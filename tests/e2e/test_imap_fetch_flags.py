"""FLAGS-only FETCH read in chunks (issue 18): every line must be what the store holds
when the command runs, with the session's own sequence numbers, whatever other sessions
did between two FETCHes. The chunks are made tiny here so each answer spans several.

The truth each answer is checked against comes from another path: a FETCH that also
asks for RFC822.SIZE reads whole message rows (`services.fetching`), not flag rows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pillarbox.server.imap import fetch as fetch_module
from tests.e2e.conftest import RunningServer
from tests.e2e.modseq_client import append, fetches, logged_in, ok, untagged
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

COUNT = 11


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "FLAGS_FIRST_CHUNK", 2)
    monkeypatch.setattr(fetch_module, "FLAGS_CHUNK", 3)


@pytest.fixture
def clients(server: RunningServer) -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for c in opened:
        c.close()


def _client(server: RunningServer, clients: list[RawImap]) -> RawImap:
    c = logged_in(server.port("imap"))
    clients.append(c)
    return c


def _fill(c: RawImap) -> list[int]:
    flags = ["", "(\\Seen) ", "(\\Flagged $Work) ", "(\\Seen \\Answered) ", "($Later) "]
    return [append(c, data=_message(i), flags=flags[i % len(flags)]) for i in range(COUNT)]


def _message(i: int) -> bytes:
    return f"From: a@example.test\r\nSubject: m{i}\r\n\r\nbody {i}\r\n".encode()


def _truth(c: RawImap) -> dict[int, tuple[int, frozenset[bytes]]]:
    """UID -> (sequence number, flags) from the row-reading FETCH path."""
    return {
        uid: (seq, flags)
        for uid, (seq, flags, _modseq) in fetches(
            ok(c.cmd("UID FETCH 1:* (FLAGS RFC822.SIZE)"))
        ).items()
    }


def _flags_only(
    c: RawImap, command: str, *, once: bool = True
) -> dict[int, tuple[int, frozenset[bytes]]]:
    """UID -> (sequence number, flags) of the answer. `once`: each message in exactly
    one line (no unsolicited FETCH expected); otherwise every line of a message must say
    the same (an unsolicited one cannot hide a stale line of the answer)."""
    lines = ok(c.cmd(command))
    got = fetches(lines)
    fetch_lines = [x for x in untagged(lines) if b" FETCH " in x]
    if once:
        assert len(got) == len(fetch_lines)
    for line in fetch_lines:
        assert all(
            (seq, flags) == (got[uid][0], got[uid][1])
            for uid, (seq, flags, _modseq) in fetches([line]).items()
        ), line
    return {uid: (seq, flags) for uid, (seq, flags, _modseq) in got.items()}


def test_chunked_flags_fetch_is_exact(server: RunningServer, clients: list[RawImap]) -> None:
    """UID FETCH 1:* (UID FLAGS) over several chunks: every message once, in order,
    with its sequence number and flags (keywords and system flags alike)."""
    a = _client(server, clients)
    uids = _fill(a)
    ok(a.cmd("SELECT INBOX"))
    lines = ok(a.cmd("UID FETCH 1:* (UID FLAGS)"))
    seqs = [int(m.group(1)) for m in (re.match(rb"\* (\d+) FETCH", x) for x in lines) if m]
    assert seqs == list(range(1, COUNT + 1))
    assert _flags_only(a, "UID FETCH 1:* (UID FLAGS)") == _truth(a)
    assert _flags_only(a, f"FETCH 1:{COUNT} (UID FLAGS)") == _truth(a)
    # A set with holes, and one of a single message.
    picked = uids[1:3] + uids[5:6] + uids[8:]
    want = {u: v for u, v in _truth(a).items() if u in picked}
    assert _flags_only(a, "UID FETCH " + ",".join(map(str, picked)) + " (FLAGS)") == want
    assert _flags_only(a, f"UID FETCH {uids[4]} (FLAGS)") == {uids[4]: _truth(a)[uids[4]]}
    got = fetches(ok(a.cmd("UID FETCH 1:* (FLAGS MODSEQ)")))
    assert all(modseq is not None for _seq, _flags, modseq in got.values())
    assert {u: (s, f) for u, (s, f, _m) in got.items()} == _truth(a)


def test_flags_fetch_after_changes_from_another_session(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """Flags changed and messages expunged by another session between two FETCHes: the
    second FETCH shows the new flags at once. An expunge this session has not been told
    of yet keeps its sequence number (the message is simply not in the answer: RFC 9051
    §7.5.1, no EXPUNGE during FETCH), and the numbers after it stay the session's."""
    a = _client(server, clients)
    b = _client(server, clients)
    uids = _fill(a)
    ok(a.cmd("SELECT INBOX"))
    before = _flags_only(a, "FETCH 1:* (UID FLAGS)")
    assert before == _truth(a)

    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd(f"UID STORE {uids[0]},{uids[6]},{uids[10]} +FLAGS (\\Deleted $New)"))
    ok(b.cmd(f"UID STORE {uids[3]} -FLAGS (\\Seen)"))
    ok(b.cmd(f"UID EXPUNGE {uids[6]}"))

    # Unsolicited FETCHes of B's changes may come too (RFC 9051 §7.5.2).
    after = _flags_only(a, "FETCH 1:* (UID FLAGS)", once=False)
    assert uids[6] not in after
    for uid in uids:
        if uid == uids[6]:
            continue
        seq, flags = after[uid]
        assert seq == before[uid][0]  # the session's numbering, expunge not yet told
        if uid in (uids[0], uids[10]):
            assert flags == before[uid][1] | {b"\\Deleted", b"$New"}
        elif uid == uids[3]:
            assert flags == before[uid][1] - {b"\\Seen"}
        else:
            assert flags == before[uid][1]
    # The expunge is told at the next command that may tell it; numbers then close up.
    assert any(x.endswith(b" EXPUNGE") for x in ok(a.cmd("NOOP")))
    assert _flags_only(a, "UID FETCH 1:* (UID FLAGS)") == _truth(a)
    assert sorted(seq for seq, _f in _truth(a).values()) == list(range(1, COUNT))

    # One more change between two FETCHes: the next answer has it.
    ok(b.cmd(f"UID STORE {uids[1]} +FLAGS (\\Flagged)"))
    assert b"\\Flagged" in _flags_only(a, "UID FETCH 1:* (UID FLAGS)", once=False)[uids[1]][1]


def test_flags_fetch_marks_recent_for_imap4rev1(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """\\Recent (RFC 3501 §2.3.2) is per session: the session that took a message as
    recent sees it in the chunked answer, another session does not."""
    a = _client(server, clients)
    _fill(a)
    first = _client(server, clients)
    ok(first.cmd("SELECT INBOX"))  # takes every message as recent
    second = _client(server, clients)
    ok(second.cmd("SELECT INBOX"))
    mine = _flags_only(first, "UID FETCH 1:* (UID FLAGS)")
    theirs = _flags_only(second, "UID FETCH 1:* (UID FLAGS)")
    assert all(b"\\Recent" in flags for _seq, flags in mine.values())
    assert all(b"\\Recent" not in flags for _seq, flags in theirs.values())
    assert {u: (s, f - {b"\\Recent"}) for u, (s, f) in mine.items()} == theirs


def test_flags_lines_exact_bytes(server: RunningServer, clients: list[RawImap]) -> None:
    """The lines as sent, for the framing fast path (UID FETCH n:* (UID FLAGS)) and the
    line-by-line one (other item orders, MODSEQ, a set with holes): system flags first
    in a fixed order, then keywords, an empty list as ``()``, items in the order asked
    (UID first for UID FETCH, RFC 9051 §6.4.9)."""
    other = _client(server, clients)
    uids = _fill(other)
    ok(other.cmd("SELECT INBOX"))  # takes them as recent: `a` sees no \Recent
    ok(other.cmd(f"UID STORE {uids[2]} +FLAGS (\\Draft zeta Alpha)"))
    a = _client(server, clients)
    ok(a.cmd("SELECT INBOX"))
    want = {
        uids[0]: b"()",
        uids[1]: b"(\\Seen)",
        uids[2]: b"(\\Draft \\Flagged $Work Alpha zeta)",
        uids[3]: b"(\\Answered \\Seen)",
        uids[4]: b"($Later)",
    }

    def lines(command: str) -> list[bytes]:
        return [x for x in untagged(ok(a.cmd(command))) if b" FETCH (" in x]

    got = lines("UID FETCH 1:* (UID FLAGS)")
    assert got[:5] == [
        b"* %d FETCH (UID %d FLAGS %s)" % (i + 1, u, want[u]) for i, u in enumerate(uids[:5])
    ]
    got = lines("FETCH 1:5 (FLAGS)")
    assert got == [b"* %d FETCH (FLAGS %s)" % (i + 1, want[u]) for i, u in enumerate(uids[:5])]
    got = lines("FETCH 1,3 (FLAGS UID)")
    assert got == [
        b"* %d FETCH (FLAGS %s UID %d)" % (i + 1, want[uids[i]], uids[i]) for i in (0, 2)
    ]
    got = lines(f"UID FETCH {uids[2]} (FLAGS MODSEQ)")
    assert re.fullmatch(
        rb"\* 3 FETCH \(UID %d FLAGS \(\\Draft \\Flagged \$Work Alpha zeta\) MODSEQ \(\d+\)\)"
        % uids[2],
        got[0],
    )


def test_flags_fetch_recent_on_part_of_the_answer(
    server: RunningServer, clients: list[RawImap]
) -> None:
    """Only the messages this IMAP4rev1 session took as recent carry \\Recent, in its
    place among the system flags, whichever chunk they fall in."""
    a = _client(server, clients)
    _fill(a)
    first = _client(server, clients)
    ok(first.cmd("SELECT INBOX"))  # takes the first COUNT messages as recent
    ok(first.cmd("CLOSE"))
    ok(first.cmd("SELECT INBOX"))  # ... and no longer: they were looked at
    late = [append(a, data=_message(100 + i), flags="(\\Seen) ") for i in range(2)]
    ok(first.cmd("NOOP"))  # the new ones are recent for `first`
    got = _flags_only(first, "UID FETCH 1:* (UID FLAGS)", once=False)
    assert {u for u, (_s, f) in got.items() if b"\\Recent" in f} == set(late)
    line = [x for x in untagged(ok(first.cmd(f"UID FETCH {late[0]} (UID FLAGS)"))) if b"FETCH" in x]
    assert line == [b"* %d FETCH (UID %d FLAGS (\\Recent \\Seen))" % (COUNT + 1, late[0])]
