"""Bare line feeds in the SMTP core, in both `[smtp] bare_newline` modes.

Only CRLF.CRLF ends DATA in either mode, so no smuggling variant ends a message or starts
a command (CVE-2023-51764 class). `normalize` (Postfix 3.9's default) takes a bare LF as a
line end and stores CRLF; `reject` refuses a message holding one with 554 5.6.0 and a
command line ending in one with 500 5.5.2. A bare CR is refused in both modes. Every
transcript is fed whole, split at every byte boundary and byte by byte
(`all_splits_agree`).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp import responses as r

from .driver import drive, new
from .test_server import all_splits_agree

NORMALIZE = {"normalize_bare_lf": True}
REJECT = {"normalize_bare_lf": False}
HEAD = b"EHLO c\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
SMUGGLED = (
    b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n\r\nforged\r\n"
)


def smuggling(marker: bytes) -> bytes:
    return HEAD + b"Subject: x\r\n\r\nhello" + marker + SMUGGLED + b".\r\nNOOP\r\n"


def names(run: object) -> list[str]:
    return [type(e).__name__ for e in run.events]  # type: ignore[attr-defined]


@pytest.mark.parametrize("marker", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"])
def test_lf_smuggling_normalized(marker: bytes) -> None:
    """normalize: "LF . LF", "CRLF . LF" and "LF . CRLF" are content. The "." line loses
    its dot like any stuffed line and becomes an empty line; the smuggled commands are
    message text; the one message ends at the real CRLF.CRLF, stored with CRLF only."""
    run = all_splits_agree(smuggling(marker), **NORMALIZE)
    assert names(run).count("MailFrom") == 1
    assert names(run).count("EndOfData") == 1
    assert run.errors == []
    assert run.body == b"Subject: x\r\n\r\nhello\r\n\r\n" + SMUGGLED
    assert names(run)[-2:] == ["Noop", "ConnectionClosed"]


@pytest.mark.parametrize("marker", [b"\n.\n", b"\r\n.\n", b"\n.\r\n"])
def test_lf_smuggling_rejected(marker: bytes) -> None:
    """reject: the same variants do not end DATA either, and the message is refused at
    the real CRLF.CRLF (554 5.6.0); the smuggled MAIL is never a command."""
    run = all_splits_agree(smuggling(marker), **REJECT)
    assert names(run).count("MailFrom") == 1
    assert "EndOfData" not in names(run)
    assert run.errors == [r.BARE_LINE_ENDING]
    assert names(run)[-2:] == ["Noop", "ConnectionClosed"]


@pytest.mark.parametrize("marker", [b"\r.\r", b"\r.\r\n", b"\r\n.\r"])
@pytest.mark.parametrize("mode", [NORMALIZE, REJECT], ids=["normalize", "reject"])
def test_cr_smuggling_refused(marker: bytes, mode: dict[str, bool]) -> None:
    """A bare CR is refused in both modes (554 5.6.0) and never ends DATA."""
    run = all_splits_agree(smuggling(marker), **mode)
    assert names(run).count("MailFrom") == 1
    assert "EndOfData" not in names(run)
    assert run.errors == [r.BARE_LINE_ENDING]
    assert names(run)[-2:] == ["Noop", "ConnectionClosed"]


def test_lf_only_message_normalized() -> None:
    """What `smtplib.sendmail(msg.as_bytes())` sends for an LF-only message: lines end in
    LF, dots are doubled after LF, and smtplib adds CRLF "." CRLF. Stored with CRLF."""
    data = HEAD + b"Subject: x\n\nline\n..\n..dot\n\r\n.\r\nQUIT\r\n"
    run = all_splits_agree(data, **NORMALIZE)
    assert run.errors == []
    assert run.body == b"Subject: x\r\n\r\nline\r\n.\r\n.dot\r\n\r\n"
    assert ev.EndOfData(len(run.body)) in run.events
    assert names(run)[-1] == "Quit"


def test_lf_before_real_end() -> None:
    """A bare LF line end right before the real terminator's CRLF: "x LF CRLF . CRLF"
    ends the data (the terminator's own CRLF is real)."""
    run = all_splits_agree(HEAD + b"x\n\r\n.\r\nNOOP\r\n", **NORMALIZE)
    assert run.body == b"x\r\n\r\n"
    assert names(run)[-3:] == ["EndOfData", "Noop", "ConnectionClosed"]


def test_commands_ending_in_lf() -> None:
    """normalize: a bare LF ends a command line (as Postfix's normalize mode does)."""
    data = b"EHLO c\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\r\nNOOP\n"
    run = all_splits_agree(data, **NORMALIZE)
    assert run.errors == []
    assert names(run) == ["Hello", "MailFrom", "RcptTo", "Noop", "ConnectionClosed"]


def test_commands_ending_in_lf_rejected() -> None:
    """reject: a command line ending in a bare LF is refused (500 5.5.2) and consumed,
    so `MAIL ...\\nRCPT ...\\r\\n` is one refused line and then RCPT without MAIL."""
    data = b"EHLO c\r\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\r\nNOOP\r\n"
    run = all_splits_agree(data, **REJECT)
    assert run.errors == [r.BARE_LF_COMMAND, r.NEED_MAIL]
    assert names(run) == ["Hello", "Noop", "ConnectionClosed"]
    assert r.BARE_LF_COMMAND.startswith(b"500 5.5.2 ")


def test_bdat_line_ending_in_lf_rejected_closes() -> None:
    """reject: a BDAT line ending in a bare LF closes the connection, so that its octets
    (here a MAIL command) are never read as commands."""
    data = b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x.test>\r\nBDAT 21\nMAIL FROM:<e@x.test>\r\n"
    run = all_splits_agree(data, **REJECT)
    assert run.errors == [r.BARE_LF_BDAT]
    assert names(run) == ["Hello", "MailFrom", "RcptTo"]


def test_auth_response_ending_in_lf_rejected() -> None:
    """reject: a SASL response line ending in a bare LF is refused too, ending AUTH."""
    conn = new(**REJECT)
    run = drive(conn, [b"EHLO c\r\nAUTH PLAIN\r\nAGEAYg==\nNOOP\r\n"])
    assert run.errors == [r.BARE_LF_COMMAND]
    assert names(run) == ["Hello", "Auth", "Noop", "ConnectionClosed"]


@pytest.mark.parametrize(
    ("mode", "body", "errors"),
    [
        (NORMALIZE, b"a\r\n\r\nb\r\nc\r\n", []),
        (REJECT, None, [r.BARE_LINE_ENDING, r.NEED_MAIL]),
    ],
    ids=["normalize", "reject"],
)
def test_bdat(mode: dict[str, bool], body: bytes | None, errors: list[bytes]) -> None:
    """BDAT content follows the same mode: normalised to CRLF (a CRLF cut between two
    chunks stays one CRLF) or refused at the end of the chunk, which voids the
    transaction (the next BDAT has no MAIL)."""
    data = (
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@x.test>\r\n"
        b"BDAT 3\r\na\n\rBDAT 5 LAST\r\n\nb\nc\nNOOP\r\n"
    )
    run = all_splits_agree(data, **mode)
    assert run.errors == errors
    if body is not None:
        assert run.body == body
        assert ev.EndOfData(len(body)) in run.events
    assert names(run)[-2:] == ["Noop", "ConnectionClosed"]


# --- properties --------------------------------------------------------------------------

_LINE_END = re.compile(rb"\r\n|\n")


def reference(content: bytes) -> tuple[bytes, bytes]:
    """A line-by-line model of normalize mode for `content` followed by the end marker:
    (decoded body, bytes after the terminator). The terminator is the first CRLF "."
    CRLF whose first CRLF ends a line (the DATA command's line counts); every line end is
    CRLF or LF and comes out as CRLF, and every line loses one leading dot."""
    stream = b"\r\n" + content + b"\r\n.\r\nNEXT"
    end = stream.find(b"\r\n.\r\n")
    before, after = stream[2 : end + 2], stream[end + 5 :]
    lines = _LINE_END.split(before)[:-1]  # `before` ends with a line end
    return b"".join((x[1:] if x.startswith(b".") else x) + b"\r\n" for x in lines), after


TOKENS = [b"a", b".", b"..", b"\n", b"\r\n", b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r\n.\r\n"]


@given(st.lists(st.sampled_from(TOKENS), max_size=30), st.integers(1, 9))
def test_normalize_property(parts: list[bytes], size: int) -> None:
    """normalize, any mix of line ends and dots, cut anywhere: the body has no bare LF,
    equals the line model, and the data ends at the first real CRLF.CRLF only, the bytes
    after it being commands again."""
    content = b"".join(parts)
    expected_body, after = reference(content)
    data = HEAD + content + b"\r\n.\r\n" + b"NOOP\r\n"
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    run = drive(new(**NORMALIZE), pieces)
    assert run.body.count(b"\n") == run.body.count(b"\r\n")
    assert run.body == expected_body
    assert names(run).count("EndOfData") == 1
    end = run.records.index(ev.EndOfData(len(expected_body)))
    assert not any(isinstance(x, tuple) for x in run.records[:end])  # no error before
    if after == b"NEXT":  # no earlier terminator: only our NOOP follows the message
        assert names(run)[-2:] == ["Noop", "ConnectionClosed"]
        assert run.errors == []
