"""offlineimap (Debian's offlineimap3) against the server: a two-way Maildir sync.

The account holds multipart 8-bit messages, a ~3 MB message, nested folders and folders
with non-ASCII (modified UTF-7) names. offlineimap copies all of it down byte for byte;
then a local flag change, a local delete, a new local message and a new local folder are
pushed up, and the server ends with exactly that state (APPENDUID is used to learn the new
message's UID, RFC 4315). A third sync then has nothing to do.
"""

from __future__ import annotations

import imaplib
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer

pytestmark = pytest.mark.timeout(120)

FOLDERS = ["Work", "Work/Projects", "&AMk-t&AOk-", "Caf&AOk-/Sub"]  # "Été", "Café/Sub"


def multipart(n: int) -> bytes:
    return (
        f"From: Sender <s@example.test>\r\nTo: alice@example.test\r\n"
        f"Subject: Multipart {n}\r\nMessage-ID: <mp{n}@example.test>\r\n"
        "Date: Tue, 03 Jan 2023 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nh\u00e9llo w\u00f6rld\r\n"
        "--XX\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n--XX--\r\n"
    ).encode()


BIG = (
    b"From: b@example.test\r\nSubject: big\r\nMessage-ID: <big@example.test>\r\n\r\n"
    + (b"x" * 998 + b"\r\n") * 3000
)


def fill(server: RunningServer) -> None:
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        c.login("alice@example.test", PASSWORD)
        for f in FOLDERS:
            assert c.create(f)[0] == "OK"
        for i in range(5):
            assert c.append("INBOX", r"(\Seen)" if i % 2 else None, None, multipart(i))[0] == "OK"
        assert c.append("INBOX", None, None, BIG)[0] == "OK"
        assert c.append("Work/Projects", r"(\Flagged)", None, multipart(9))[0] == "OK"
        assert c.append("&AMk-t&AOk-", None, None, multipart(10))[0] == "OK"
    finally:
        c.logout()


def _rc(tmp: Path, server: RunningServer) -> Path:
    rc = tmp / "offlineimaprc"
    rc.write_text(
        f"""[general]
accounts = t
metadata = {tmp}/meta
[Account t]
localrepository = L
remoterepository = R
[Repository L]
type = Maildir
localfolders = {tmp}/Mail
[Repository R]
type = IMAP
remotehost = 127.0.0.1
remoteport = {server.port("imap")}
remoteuser = alice@example.test
remotepass = {PASSWORD}
ssl = no
starttls = no
"""
    )
    return rc


def _sync(rc: Path) -> str:
    proc = subprocess.run(
        ["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(rc.parent)},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "ERROR" not in out, out[-4000:]
    return out


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("cur/*")) + sorted(folder.glob("new/*"))


def test_offlineimap_two_way_sync(server: RunningServer, tmp_path: Path) -> None:
    """Every folder and message comes down intact; local flag, delete, new message and
    new folder go up; a third sync copies nothing."""
    fill(server)
    rc = _rc(tmp_path, server)
    _sync(rc)
    mail = tmp_path / "Mail"
    inbox = _files(mail / "INBOX")
    assert len(inbox) == 6
    bodies = {f.read_bytes() for f in inbox}
    # offlineimap stores what FETCH BODY.PEEK[] returned, with LF line ends.
    assert BIG.replace(b"\r\n", b"\n") in bodies
    assert multipart(3).replace(b"\r\n", b"\n") in bodies
    assert [f.read_bytes() for f in _files(mail / "&AMk-t&AOk-")] == [
        multipart(10).replace(b"\r\n", b"\n")
    ]
    projects = _files(mail / "Work.Projects")
    assert len(projects) == 1 and projects[0].name.endswith(":2,F")
    assert (mail / "Caf&AOk-.Sub").is_dir()
    assert sum(":2,S" in f.name for f in inbox) == 2

    # Local changes: flag the big message, delete multipart 0, add a message and a folder.
    big = next(f for f in inbox if f.stat().st_size > 1_000_000)
    big.rename(big.parent.parent / "cur" / (big.name.split(":2,")[0] + ":2,F"))
    next(f for f in inbox if b"Multipart 0\n" in f.read_bytes()).unlink()
    new_msg = b"From: me@example.test\nSubject: written offline\n\nhi\n"
    (mail / "INBOX" / "new" / "local1").write_bytes(new_msg)
    for sub in ("cur", "new", "tmp"):
        (mail / "Offline" / sub).mkdir(parents=True)
    (mail / "Offline" / "new" / "local2").write_bytes(new_msg)
    _sync(rc)

    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        c.login("alice@example.test", PASSWORD)
        assert c.select("INBOX") == ("OK", [b"6"])
        _, data = c.search(None, "FLAGGED")
        assert len(data[0].split()) == 1
        _, data = c.fetch(data[0], "(RFC822.SIZE)")
        assert b"RFC822.SIZE %d" % len(BIG) in data[0]
        assert c.search(None, "SUBJECT", '"Multipart 0"') == ("OK", [b""])
        _, data = c.search(None, "SUBJECT", '"written offline"')
        assert len(data[0].split()) == 1
        assert c.select("Offline") == ("OK", [b"1"])
    finally:
        c.logout()

    out = _sync(rc)
    assert "Copy message" not in out and "Deleting" not in out, out
    assert len(_files(mail / "INBOX")) == 6
