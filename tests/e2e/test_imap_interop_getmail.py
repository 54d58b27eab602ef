"""getmail6 in IMAP mode (SimpleIMAPRetriever) against the server.

getmail names folders in Unicode and encodes them to modified UTF-7 itself, fetches
each message whole, hands it to an external MDA, then (delete = true) marks it
\\Deleted and expunges it. Pinned: every message of INBOX, a nested folder and a
non-ASCII folder arrives byte for byte (8-bit and a 3 MB message included), the
server's folders are empty afterwards, and a second run finds nothing.
"""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_interop_offlineimap import BIG, multipart

pytestmark = pytest.mark.timeout(60)


def _fill(server: RunningServer) -> list[bytes]:
    sent: list[bytes] = []
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        c.login("alice@example.test", PASSWORD)
        for name in ("Work/Projects", "&AMk-t&AOk-"):  # "Été"
            assert c.create(name)[0] == "OK"
        for i, (box, data) in enumerate(
            [
                ("INBOX", multipart(1)),
                ("INBOX", BIG),
                ("INBOX", multipart(2)),
                ("Work/Projects", multipart(3)),
                ("&AMk-t&AOk-", multipart(4)),
            ]
        ):
            assert c.append(box, r"(\Seen)" if i == 2 else None, None, data)[0] == "OK"
            sent.append(data)
    finally:
        c.logout()
    return sent


def _getmail(tmp: Path, server: RunningServer) -> str:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    rc = tmp / "getmailrc"
    rc.write_text(
        f"""[retriever]
type = SimpleIMAPRetriever
server = 127.0.0.1
port = {server.port("imap")}
username = alice@example.test
password = {PASSWORD}
mailboxes = ("INBOX", "Work/Projects", "\u00c9t\u00e9")
[destination]
type = MDA_external
path = /bin/sh
arguments = ("-c", "cat > {out}/$$")
allow_root_commands = true
[options]
read_all = false
delete = true
verbose = 1
""",
        encoding="utf-8",
    )
    proc = subprocess.run(
        ["getmail", "--rcfile", str(rc), "--getmaildir", str(tmp)],
        capture_output=True,
        text=True,
        timeout=45,
        env={**os.environ, "HOME": str(tmp)},
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    return text


def _strip_received(data: bytes) -> bytes:
    """getmail prepends Return-Path, Delivered-To and a folded Received header, and adds
    X-getmail-retrieved-from-mailbox at the end of the header."""
    _, sep, rest = data.partition(b"\nFrom: ")
    assert sep, data[:300]
    return re.sub(rb"X-getmail-retrieved-from-mailbox: [^\n]*\n", b"", b"From: " + rest)


def test_getmail_retrieves_and_deletes(server: RunningServer, tmp_path: Path) -> None:
    """All five messages arrive intact from three folders; afterwards the folders are
    empty on the server; a second run retrieves nothing."""
    sent = _fill(server)
    text = _getmail(tmp_path, server)
    assert "5 messages" in text, text
    got = sorted(_strip_received(f.read_bytes()) for f in (tmp_path / "out").iterdir())
    assert got == sorted(d.replace(b"\r\n", b"\n") for d in sent)

    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        c.login("alice@example.test", PASSWORD)
        for box in ("INBOX", "Work/Projects", "&AMk-t&AOk-"):
            typ, data = c.status(box, "(MESSAGES)")
            assert typ == "OK" and b"(MESSAGES 0)" in data[0], (box, data)
    finally:
        c.logout()

    text = _getmail(tmp_path, server)
    assert "0 messages" in text, text
    assert len(list((tmp_path / "out").iterdir())) == 5
