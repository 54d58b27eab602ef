"""SMTP with the command-line clients people really use: swaks and curl (Debian
packages, installed by .ci/run), over the MX port, submission with STARTTLS + AUTH, and
submissions with implicit TLS."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import headers_of, mailbox

MSG = (
    b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: from a CLI\r\n"
    b"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\nMessage-ID: <cli@example.test>\r\n\r\n"
    b"Sent by a command-line client.\r\n"
)

needs_swaks = pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")


def run(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=60, check=False)


@needs_swaks
def test_swaks_mx(server: RunningServer) -> None:
    res = run(
        "swaks",
        "--server",
        f"127.0.0.1:{server.port('smtp')}",
        "--from",
        "x@remote.test",
        "--to",
        "bob@example.test",
        "--helo",
        "swaks.test",
    )
    assert res.returncode == 0, res.stdout.decode()
    (stored,) = mailbox(server, "bob@example.test")
    assert dict(headers_of(stored))["Delivered-To"] == "bob@example.test"


@needs_swaks
@pytest.mark.parametrize("mode", ["--tls", "--tls-on-connect"])
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_submission(server: RunningServer, mode: str, mech: str) -> None:
    port = server.port("submission" if mode == "--tls" else "submissions")
    res = run(
        "swaks",
        "--server",
        f"127.0.0.1:{port}",
        mode,
        "--auth",
        mech,
        "--auth-user",
        "alice@example.test",
        "--auth-password",
        PASSWORD,
        "--from",
        "alice@example.test",
        "--to",
        "bob@example.test",
        "--header",
        "From: alice@example.test",
    )
    assert res.returncode == 0, res.stdout.decode()
    (stored,) = mailbox(server, "bob@example.test")
    assert "with ESMTPSA" in dict(headers_of(stored))["Received"]


@needs_swaks
def test_swaks_unknown_and_relay_refused(server: RunningServer) -> None:
    for rcpt in ("nobody@example.test", "victim@remote.test"):
        res = run(
            "swaks",
            "--server",
            f"127.0.0.1:{server.port('smtp')}",
            "--from",
            "x@remote.test",
            "--to",
            rcpt,
        )
        assert res.returncode != 0
        assert b"<** 550 5." in res.stdout


@needs_swaks
def test_swaks_spoofed_sender_refused(server: RunningServer) -> None:
    res = run(
        "swaks",
        "--server",
        f"127.0.0.1:{server.port('submission')}",
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "alice@example.test",
        "--auth-password",
        PASSWORD,
        "--from",
        "bob@example.test",
        "--to",
        "carol@other.test",
    )
    assert res.returncode != 0 and b" 553 5.7.1 Sender address not owned" in res.stdout


@needs_curl
def test_curl_mx(server: RunningServer, tmp_path: Path) -> None:
    msg = tmp_path / "msg.eml"
    msg.write_bytes(MSG)
    res = run(
        "curl",
        "-sS",
        f"smtp://127.0.0.1:{server.port('smtp')}/curl.test",
        "--mail-from",
        "x@remote.test",
        "--mail-rcpt",
        "bob@example.test",
        "--upload-file",
        str(msg),
    )
    assert res.returncode == 0, res.stderr.decode()
    (stored,) = mailbox(server, "bob@example.test")
    assert stored.endswith(MSG)


@needs_curl
@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_curl_submission(server: RunningServer, tmp_path: Path, scheme: str) -> None:
    msg = tmp_path / "msg.eml"
    msg.write_bytes(MSG)
    port = server.port("submission" if scheme == "smtp" else "submissions")
    res = run(
        "curl",
        "-sS",
        "--insecure",
        "--ssl-reqd",
        f"{scheme}://127.0.0.1:{port}/curl.test",
        "--user",
        f"alice@example.test:{PASSWORD}",
        "--mail-from",
        "alice@example.test",
        "--mail-rcpt",
        "bob@example.test",
        "--mail-rcpt",
        "carol@other.test",
        "--upload-file",
        str(msg),
    )
    assert res.returncode == 0, res.stderr.decode()
    for user in ("bob@example.test", "carol@other.test"):
        (stored,) = mailbox(server, user)
        assert stored.endswith(MSG)


@needs_curl
def test_curl_oversize_refused(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = server_factory(smtp={"max_message_size": 2000})
    msg = tmp_path / "big.eml"
    msg.write_bytes(MSG + (b"x" * 70 + b"\r\n") * 100)
    res = run(
        "curl",
        "-sS",
        f"smtp://127.0.0.1:{server.port('smtp')}/curl.test",
        "--mail-from",
        "x@remote.test",
        "--mail-rcpt",
        "bob@example.test",
        "--upload-file",
        str(msg),
    )
    assert res.returncode != 0
    assert mailbox(server, "bob@example.test") == []
