"""A message nested past the MIME parser's limits (issue 16 item 4): delivered over SMTP,
it is stored, its innermost word is found by SEARCH TEXT and BODY (the opaque rest is
indexed as flat text), and its BODYSTRUCTURE is well-formed, the part beyond the limit
shown as application/octet-stream."""

from __future__ import annotations

import imaplib
import smtplib

from pillarbox.message.parts import MAX_DEPTH
from tests.e2e.conftest import PASSWORD, RunningServer

WORD = b"innermostsecret"


def nested(levels: int) -> bytes:
    head = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    opens = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(levels)
    )
    inner = b"Content-Type: text/plain\r\n\r\nthe word is " + WORD + b"\r\n"
    closes = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(levels)))
    return head + opens + inner + closes


def balanced(structure: bytes) -> bool:
    depth, quoted, escaped = 0, False, False
    for byte in structure:
        ch = chr(byte)
        if quoted:
            escaped, quoted = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not quoted


def test_a_thousand_levels_of_nesting_hide_nothing(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=60) as s:
        assert s.sendmail("a@remote.test", ["bob@example.test"], nested(1000)) == {}
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=60)
    try:
        c.login("bob@example.test", PASSWORD)
        c.select("INBOX")
        assert c.search(None, "TEXT", WORD.decode())[1] == [b"1"]
        assert c.search(None, "BODY", WORD.decode())[1] == [b"1"]
        assert c.search(None, "BODY", "notinthere")[1] == [b""]
        typ, data = c.fetch("1", "(BODYSTRUCTURE)")
        assert typ == "OK"
        raw = data[0] if isinstance(data[0], bytes) else data[0][0]
        structure = raw[raw.index(b"BODYSTRUCTURE ") + len(b"BODYSTRUCTURE ") : -1]
        assert balanced(structure), structure[-200:]
        assert structure.startswith(b"(" * MAX_DEPTH + b'("application" "octet-stream"')
        assert structure.count(b'"mixed"') == MAX_DEPTH
        typ, data = c.fetch("1", "(BODY.PEEK[1.1.1])")  # sections still address the parts
        assert typ == "OK"
    finally:
        c.logout()
