"""Real third-party IMAP clients against the server: curl and mbsync (isync).

mbsync does a full two-way sync of a 500-message account into a local Maildir over
loopback (plaintext login is allowed there; the self-signed certificate names another
host), pushes a local flag change and a local delete back, and a second sync then
changes nothing.
"""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.timeout(600)


def message(n: int) -> bytes:
    return (
        f"From: Sender {n} <s{n}@example.test>\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: Message number {n}\r\n"
        f"Message-ID: <n{n}@example.test>\r\n"
        f"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
        f"\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


def fill(server: RunningServer, count: int) -> None:
    """Messages 1..COUNT into alice's INBOX as UIDs 1..COUNT, every third one \\Seen: one
    MULTIAPPEND (RFC 3502) with non-synchronizing literals (RFC 7888), so one store
    transaction instead of a durable commit per APPEND (500 of those took ~30 s)."""
    c = RawImap(server.port("imap"), timeout=60)
    try:
        assert c.login("alice@example.test", PASSWORD)[-1].split()[1] == b"OK"
        parts = []
        for n in range(1, count + 1):
            data = message(n)
            flags = b"(\\Seen) " if n % 3 == 0 else b""
            parts.append(flags + b"{%d+}\r\n" % len(data) + data)
        done = c.cmd(b"APPEND INBOX " + b" ".join(parts))[-1]
        assert done.split()[1] == b"OK", done
    finally:
        c.close()


def test_curl_lists_and_fetches(server: RunningServer) -> None:
    """curl imap:// lists mailboxes and fetches a message by UID, byte for byte."""
    fill(server, 2)
    base = f"imap://127.0.0.1:{server.port('imap')}"
    auth = ["-u", f"alice@example.test:{PASSWORD}"]
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "30", *auth, base + "/"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"INBOX" in out and b"Sent" in out
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "30", *auth, base + "/INBOX;UID=2"],
        capture_output=True,
        check=True,
    ).stdout
    assert out == message(2)
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "30", *auth, base + "/INBOX", "-X", "SEARCH SUBJECT number"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"SEARCH 1 2" in out


def _mbsyncrc(tmp: Path, server: RunningServer, tls: str = "SSLType None") -> Path:
    local = tmp / "Mail"
    local.mkdir()
    rc = tmp / "mbsyncrc"
    port = server.port("imaps" if "IMAPS" in tls else "imap")
    rc.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {port}
User alice@example.test
Pass "{PASSWORD}"
{tls}

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
Sync All
"""
    )
    return rc


def _mbsync(rc: Path) -> str:
    proc = subprocess.run(
        ["mbsync", "-c", str(rc), "-V", "-a"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HOME": str(rc.parent)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _maildir_files(tmp: Path) -> list[Path]:
    inbox = tmp / "Mail" / "INBOX"
    return sorted((inbox / "cur").iterdir()) + sorted((inbox / "new").iterdir())


def test_mbsync_two_way_sync(server: RunningServer, tmp_path: Path) -> None:
    """Full sync of 500 messages; a local flag and a local delete reach the server; the
    next sync is a no-op."""
    fill(server, 500)
    rc = _mbsyncrc(tmp_path, server)
    _mbsync(rc)
    files = _maildir_files(tmp_path)
    assert len(files) == 500
    # Maildir keeps LF line ends (mbsync converts); the content is otherwise the same.
    # mbsync may add an X-TUID header to the local copy to recognise it after a crash.
    bodies = {re.sub(rb"X-TUID: [^\n]*\n", b"", f.read_bytes()) for f in files}
    assert message(1).replace(b"\r\n", b"\n") in bodies
    assert message(500).replace(b"\r\n", b"\n") in bodies
    seen_local = [f for f in files if ":2," in f.name and "S" in f.name.split(":2,")[1]]
    assert len(seen_local) == 500 // 3

    # Local changes: flag one message, delete (trash + expunge) another.
    def find(n: int) -> Path:
        subject = f"Subject: Message number {n}\n".encode()
        return next(f for f in _maildir_files(tmp_path) if subject in f.read_bytes())

    flagged = find(10)
    base, _, fl = flagged.name.partition(":2,")
    flagged.rename(flagged.parent.parent / "cur" / f"{base}:2,{''.join(sorted(fl + 'F'))}")
    find(20).unlink()
    _mbsync(rc)

    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=60)
    try:
        c.login("alice@example.test", PASSWORD)
        _, data = c.select("INBOX")
        assert data == [b"499"]
        _, data = c.search(None, "FLAGGED")
        assert data[0].split() != [] and len(data[0].split()) == 1
        _, data = c.fetch(data[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Message number 10\r\n" in data[0][1]
        _, data = c.search(None, "HEADER", "Message-ID", '"<n20@"')
        assert data == [b""]
        before = c.fetch("1:*", "(UID FLAGS)")[1]
    finally:
        c.logout()

    out = _mbsync(rc)
    assert len(_maildir_files(tmp_path)) == 499
    c = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=60)
    try:
        c.login("alice@example.test", PASSWORD)
        c.select("INBOX")
        assert c.fetch("1:*", "(UID FLAGS)")[1] == before
    finally:
        c.logout()
    assert "Error" not in out


def test_mbsync_over_imaps_trusts_the_generated_certificate(
    server: RunningServer, tmp_path: Path
) -> None:
    """The certificate made on first start, given to mbsync as its CA file, is accepted
    for 127.0.0.1 over implicit TLS (issue 16 item 6: as a CA certificate it was refused),
    and the sync works through it."""
    fill(server, 3)
    cert = server.config.data_path / "tls" / "selfsigned.crt"
    rc = _mbsyncrc(tmp_path, server, f"SSLType IMAPS\nCertificateFile {cert}")
    _mbsync(rc)
    assert len(_maildir_files(tmp_path)) == 3
