"""The direct FETCH path for whole messages (`server.imap.fetch.DIRECT_MAX`): a client
opening a message sends ``UID FETCH n BODY[]`` (or BODY.PEEK[], RFC822), and that path
answers it from one store call. It must keep every rule of the general path, checked
here over imaplib: BODY[] and RFC822 set \\Seen (RFC 9051 §6.4.5) and say so in the
same response, with MODSEQ once CONDSTORE is on (RFC 7162 §3.1), and other sessions
hear of it; BODY.PEEK[] and a read-only session change nothing; a message another
session expunged gets no answer; a message large enough to stream is answered all
the same (by the general path). Each test also checks which path answered, so a change
that stops taking the direct path cannot pass them unnoticed."""

from __future__ import annotations

import contextlib
import imaplib
import re
from collections.abc import Iterator

import pytest

from pillarbox.services import fetching
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.mtas import wait_until

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py


def _message(i: int, size: int = 0) -> bytes:
    head = f"From: a@example.test\r\nTo: alice@example.test\r\nSubject: m{i}\r\n\r\n"
    body = f"body of {i}\r\n"
    if size:
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\r\n"
        return head.encode() + line * (size // len(line) + 1)
    return (head + body).encode()


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """One entry per direct-path attempt: True when it answered, False when it handed
    the command to the general path (the server runs in this process's thread)."""
    calls: list[bool] = []
    original = fetching.fetch_whole

    async def recording(*args: object, **kwargs: object) -> list[fetching.FetchedMessage] | None:
        found = await original(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(found is not None)
        return found

    monkeypatch.setattr(fetching, "fetch_whole", recording)
    return calls


@pytest.fixture
def sessions(server: RunningServer) -> Iterator[list[imaplib.IMAP4]]:
    opened: list[imaplib.IMAP4] = []
    yield opened
    for c in opened:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            c.logout()


def _login(server: RunningServer, sessions: list[imaplib.IMAP4]) -> imaplib.IMAP4:
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    c.login("alice@example.test", PASSWORD)
    sessions.append(c)
    return c


def _fill(c: imaplib.IMAP4, messages: list[bytes]) -> list[int]:
    for data in messages:
        typ, _ = c.append("INBOX", "", None, data)
        assert typ == "OK"
    typ, data = c.select("INBOX")
    assert typ == "OK"
    typ, found = c.uid("SEARCH", "ALL")
    assert typ == "OK"
    return [int(u) for u in found[0].split()]


def _filled(
    server: RunningServer, sessions: list[imaplib.IMAP4], count: int
) -> tuple[imaplib.IMAP4, list[int]]:
    """A session of alice's with INBOX selected, holding `count` test messages."""
    a = _login(server, sessions)
    return a, _fill(a, [_message(i) for i in range(count)])


def _answers(data: list[object]) -> list[tuple[bytes, bytes | None]]:
    """imaplib's FETCH data as (response text without the literal, literal or None)."""
    out: list[tuple[bytes, bytes | None]] = []
    for part in data:
        if isinstance(part, tuple):
            out.append((part[0], part[1]))
        elif isinstance(part, bytes) and part.strip() and part.strip() != b")":
            if out and out[-1][1] is not None and not re.match(rb"\d+ \(", part):
                out[-1] = (out[-1][0] + part, out[-1][1])  # the items after the literal
            else:
                out.append((part, None))
    return out


def _seen(text: bytes) -> bool | None:
    """Whether the FLAGS item of a response holds \\Seen; None without FLAGS
    (\\Recent, which these IMAP4rev1 sessions also get, is not looked at)."""
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    return None if m is None else b"\\Seen" in m.group(1).split()


def _flags(c: imaplib.IMAP4, uid: int) -> bool | None:
    """Whether message `uid` has \\Seen now."""
    typ, data = c.uid("FETCH", str(uid), "(FLAGS)")
    assert typ == "OK", data
    return _seen(b" ".join(d for d in data if isinstance(d, bytes)))


def test_body_sets_seen_tells_flags_and_other_sessions(
    server: RunningServer, sessions: list[imaplib.IMAP4], direct: list[bool]
) -> None:
    a, uids = _filled(server, sessions, 3)
    b = _login(server, sessions)
    assert b.select("INBOX")[0] == "OK"
    typ, data = a.uid("FETCH", str(uids[1]), "(BODY[])")
    assert typ == "OK"
    ((text, literal),) = _answers(data)
    assert literal == _message(1)
    assert text.startswith(b"2 (UID %d BODY[] {" % uids[1]), text
    assert _seen(text) is True, text  # RFC 9051 §6.4.5
    assert direct == [True]
    assert _flags(a, uids[1]) is True

    def told() -> bool:
        typ, _ = b.noop()
        assert typ == "OK"
        return any(_seen(r) for r in b.untagged_responses.pop("FETCH", []))

    wait_until(told, "the other session hears of \\Seen", timeout=10)
    # Already \Seen: no FLAGS item the client did not ask for (nothing changed).
    typ, data = a.uid("FETCH", str(uids[1]), "(BODY[])")
    ((text, literal),) = _answers(data)
    assert literal == _message(1) and b"FLAGS" not in text, text


def test_rfc822_sets_seen_with_modseq_under_condstore(
    server: RunningServer, sessions: list[imaplib.IMAP4], direct: list[bool]
) -> None:
    a, uids = _filled(server, sessions, 2)
    typ, data = a.uid("FETCH", str(uids[0]), "(MODSEQ)")  # RFC 7162 §3.1: enables CONDSTORE
    assert typ == "OK"
    before = int(re.search(rb"MODSEQ \((\d+)\)", data[0]).group(1))  # type: ignore[union-attr,arg-type]
    typ, data = a.uid("FETCH", str(uids[0]), "(RFC822)")
    assert typ == "OK"
    ((text, literal),) = _answers(data)
    assert literal == _message(0)
    assert b"RFC822 {" in text and _seen(text) is True, text
    m = re.search(rb"MODSEQ \((\d+)\)", text)
    assert m and int(m.group(1)) > before, text
    # Asked for FLAGS and MODSEQ itself: each once, with the new values.
    typ, data = a.uid("FETCH", str(uids[1]), "(FLAGS BODY[] MODSEQ)")
    ((text, literal),) = _answers(data)
    assert literal == _message(1)
    assert text.count(b"FLAGS") == 1 and text.count(b"MODSEQ") == 1, text
    assert _seen(text) is True, text
    assert direct == [True, True]


def test_peek_and_read_only_leave_seen_alone(
    server: RunningServer, sessions: list[imaplib.IMAP4], direct: list[bool]
) -> None:
    a, uids = _filled(server, sessions, 2)
    typ, data = a.uid("FETCH", f"{uids[0]},{uids[1]}", "(UID BODY.PEEK[])")
    assert typ == "OK"
    answers = _answers(data)
    assert [lit for _, lit in answers] == [_message(0), _message(1)]
    assert all(b"FLAGS" not in text for text, _ in answers), answers
    assert _flags(a, uids[0]) is False and _flags(a, uids[1]) is False
    assert a.select("INBOX", readonly=True)[0] == "OK"  # EXAMINE
    typ, data = a.uid("FETCH", str(uids[0]), "(BODY[])")
    ((text, literal),) = _answers(data)
    assert literal == _message(0) and b"FLAGS" not in text, text
    assert _flags(a, uids[0]) is False
    assert direct == [True, True]


def test_message_expunged_by_another_session(
    server: RunningServer, sessions: list[imaplib.IMAP4], direct: list[bool]
) -> None:
    a, uids = _filled(server, sessions, 3)
    b = _login(server, sessions)
    assert b.select("INBOX")[0] == "OK"
    assert b.uid("STORE", str(uids[1]), "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert b.expunge()[0] == "OK"
    # `a` has not been told, and FETCH by number holds the EXPUNGE back (RFC 9051
    # §7.5.1): the message is still 2 to it, and gets no answer; \Seen is set on none.
    typ, data = a.fetch("2", "(BODY[])")
    assert typ == "OK" and data == [None], data
    assert "EXPUNGE" not in a.untagged_responses
    typ, data = a.fetch("1:3", "(BODY[])")
    assert typ == "OK", data
    answers = _answers(data)
    assert [(t.split()[0], lit) for t, lit in answers] == [
        (b"1", _message(0)),
        (b"3", _message(2)),
    ], answers
    assert [_seen(t) for t, _ in answers] == [True, True]
    assert _flags(b, uids[0]) is True and _flags(b, uids[2]) is True
    assert direct == [True, True]


def test_large_messages(
    server: RunningServer, sessions: list[imaplib.IMAP4], direct: list[bool]
) -> None:
    """70 KiB is read whole by the direct path (as the general path would read it); a
    message to stream (`STREAM_MIN`) sends the command to the general path, which
    streams it, before anything is changed or sent."""
    a = _login(server, sessions)
    medium = _message(0, size=70 * 1024)
    huge = _message(2, size=fetching.STREAM_MIN + 1024)
    uids = _fill(a, [medium, _message(1), huge])
    typ, data = a.uid("FETCH", f"{uids[0]}:{uids[1]}", "(BODY[])")
    assert typ == "OK"
    answers = _answers(data)
    assert [lit for _, lit in answers] == [medium, _message(1)]
    assert [_seen(text) for text, _ in answers] == [True, True], answers
    assert direct == [True]
    typ, data = a.uid("FETCH", f"{uids[1]}:{uids[2]}", "(BODY[])")
    assert typ == "OK"
    answers = _answers(data)
    assert [lit for _, lit in answers] == [_message(1), huge]
    # Only the message this FETCH set \Seen on says FLAGS (the first already had it).
    assert [_seen(text) for text, _ in answers] == [None, True], answers
    assert direct == [True, False]  # handed over before anything was changed or sent
    assert _flags(a, uids[2]) is True
