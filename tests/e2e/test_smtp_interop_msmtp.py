"""Submission with msmtp (Debian package `msmtp`, installed by .ci/run), the sendmail
replacement many desktops and cron set-ups use: STARTTLS on the submission port and
implicit TLS on submissions (RFC 8314), AUTH PLAIN and LOGIN (RFC 4954), a wrong
password, and msmtp's own PIPELINING of MAIL/RCPT."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import headers_of, mailbox, queue

MSG = (
    b"From: alice@example.test\r\nTo: bob@example.test, carol@other.test\r\n"
    b"Subject: via msmtp\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n"
)


def msmtp(
    server: RunningServer,
    *args: str,
    tls: str,
    mech: str,
    password: str = PASSWORD,
    stdin: bytes = MSG,
) -> subprocess.CompletedProcess[bytes]:
    port = server.port("submission" if tls == "starttls" else "submissions")
    argv = [
        "msmtp",
        "--host=127.0.0.1",
        f"--port={port}",
        "--tls=on",
        f"--tls-starttls={'on' if tls == 'starttls' else 'off'}",
        "--tls-certcheck=off",
        f"--auth={mech.lower()}",
        "--user=alice@example.test",
        f"--passwordeval=printf %s '{password}'",
        "--from=alice@example.test",
        "--domain=client.example.test",
        *args,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=20, check=False)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_msmtp_submits_local_and_remote(server: RunningServer, tls: str, mech: str) -> None:
    """msmtp logs in with each mechanism over both TLS modes; the local recipient gets
    the message byte-exact after our trace headers (dot-stuffing undone), the remote
    one is queued."""
    res = msmtp(server, "bob@example.test", "carol@remote.test", tls=tls, mech=mech)
    assert res.returncode == 0, res.stderr.decode()
    (stored,) = mailbox(server, "bob@example.test")
    assert stored.endswith(b"\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n")
    fields = dict(headers_of(stored))
    assert fields["Subject"] == "via msmtp"
    assert "ESMTPSA" in fields["Received"]
    assert [q.recipients[0].address for q in queue(server)] == ["carol@remote.test"]


def test_msmtp_wrong_password_fails_cleanly(server: RunningServer) -> None:
    """A wrong password is 535 5.7.8 to msmtp (its exit code says "authentication
    failed"), and nothing is stored."""
    res = msmtp(server, "bob@example.test", tls="starttls", mech="PLAIN", password="wrong")
    assert res.returncode != 0
    assert b"535 5.7.8" in res.stderr, res.stderr.decode()
    assert mailbox(server, "bob@example.test") == []


def test_msmtp_refused_recipient_reported(server: RunningServer) -> None:
    """An unknown local recipient in a pipelined RCPT group is refused with 550 5.1.1;
    msmtp reports it and sends nothing to anybody (it aborts the transaction)."""
    res = msmtp(server, "bob@example.test", "nobody@example.test", tls="implicit", mech="PLAIN")
    assert res.returncode != 0
    assert b"550 5.1.1" in res.stderr, res.stderr.decode()
    assert mailbox(server, "bob@example.test") == []
