"""`pillarbox fetch`: the contract scripts use (ids and counts on stdout, one line on
stderr and exit 1 for a bad request or a failed source), against a real provider."""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision
from tests.e2e.serve import add_accounts
from tests.fetcher.conftest import ALICE, message, put, remote_subjects
from tests.test_cli import run

BOB = "bob@local.test"


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[RunningServer]:
    """The remote provider. Its slow-down after failed logins is short (0.05 s, doubling):
    the wrong-password tests fail several runs in a row, and the default 0.5 s doubling
    was most of their time; the slow-down itself is tested in tests/e2e."""
    auth = {"fail_delay": 0.05, "fail_delay_max": 2.0}
    server = RunningServer(make_config(tmp_path / "provider", auth=auth))
    server.start()
    try:
        provision(server)
        yield server
    finally:
        server.stop()


def write_config(tmp_path: Path, *, allow_private: bool) -> Path:
    path = tmp_path / "local.toml"
    path.write_text(
        '[server]\ndata_dir = "var"\nhostname = "mail.local.test"\n'
        f"[fetcher]\nallow_private_networks = {str(allow_private).lower()}\ntimeout = 20.0\n"
    )
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The local server's config, with bob's account (written in this process: `domain
    add` and `user add` are tested in tests/test_cli.py; two more CLI processes per test
    cost seconds)."""
    path = write_config(tmp_path, allow_private=True)
    add_accounts(path, "local.test", [BOB])
    return path


def add(
    config: Path, provider: RunningServer, protocol: str, *extra: str, password: str = PASSWORD
) -> str:
    listener = "pop3" if protocol == "pop3" else "imap"
    result = run(
        config,
        "fetch",
        "add",
        BOB,
        "--protocol",
        protocol,
        "--host",
        "127.0.0.1",
        "--port",
        str(provider.port(listener)),
        "--security",
        "none",
        "--user",
        ALICE,
        "--password-stdin",
        *extra,
        stdin=password + "\n",
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout.strip()


def test_add_run_list_remove(config: Path, provider: RunningServer, tmp_path: Path) -> None:
    """add prints the id; run prints how many arrived (none twice); list shows each
    source and its last run, never the password, which is not in the database either;
    the key file is the owner's alone; remove takes the source away."""
    put(provider, message(1))
    put(provider, message(2), folder="Lists")
    pop_id = add(config, provider, "pop3", "--remote", "keep", "--interval", "600")
    imap_id = add(
        config,
        provider,
        "imap",
        "--source-folder",
        "INBOX",
        "--source-folder",
        "Lists",
        "--folder",
        "From provider",
    )
    assert (pop_id, imap_id) == ("1", "2")
    result = run(config, "fetch", "run", BOB, pop_id)
    assert (result.returncode, result.stdout, result.stderr) == (0, "1\n", "")
    result = run(config, "fetch", "run", BOB)  # every source
    assert (result.returncode, result.stdout) == (0, "2\n")
    assert run(config, "fetch", "run", BOB).stdout == "0\n"
    mailboxes = run(config, "mailbox", "list", BOB).stdout.split("\n")
    assert "From provider" in mailboxes
    listing = run(config, "fetch", "list", BOB)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == [
        "ID", "PROTOCOL", "SECURITY", "HOST", "USER", "FOLDER", "REMOTE", "INTERVAL",
        "LAST-RUN", "LAST-RESULT",
    ]  # fmt: skip
    pop = lines[1].split(maxsplit=9)
    assert pop[:8] == ["1", "pop3", "none", f"127.0.0.1:{provider.port('pop3')}", ALICE,
                       "INBOX", "keep", "600"]  # fmt: skip
    assert pop[8].endswith("Z") and pop[9] == "0 new"
    assert lines[2].split(maxsplit=9)[5] == '"From'  # quoted: one column for the eye
    assert lines[2].split('"From provider"')[1].split()[:2] == ["keep", "300"]
    assert PASSWORD not in listing.stdout
    data = tmp_path / "var"
    assert PASSWORD.encode() not in (data / "pillarbox.db").read_bytes()
    key = data / "fetch-secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert remote_subjects(provider) == ["message 1"]  # kept there
    assert run(config, "fetch", "remove", BOB, pop_id).returncode == 0
    assert len(run(config, "fetch", "list", BOB).stdout.splitlines()) == 2
    result = run(config, "fetch", "remove", BOB, pop_id)
    assert result.returncode == 1 and f"has no fetch source {pop_id}" in result.stderr


def test_a_failing_source_is_reported(config: Path, provider: RunningServer) -> None:
    """A wrong password: run prints 0, one line on stderr naming the source, exit 1;
    list shows the error and the count of authentication failures in a row."""
    put(provider, message(1))
    source = add(config, provider, "imap", password="wrong password here")
    result = run(config, "fetch", "run", BOB)
    assert (result.returncode, result.stdout) == (1, "0\n")
    assert result.stderr.startswith(f"pillarbox: fetch source {source}: 127.0.0.1:")
    assert "authentication failed" in result.stderr and len(result.stderr.splitlines()) == 1
    row = run(config, "fetch", "list", BOB).stdout.splitlines()[1]
    assert "error: 127.0.0.1: authentication failed" in row
    assert "(1 authentication failures in a row)" in row
    assert "paused" not in row
    for _ in range(2):
        assert run(config, "fetch", "run", BOB, source).returncode == 1
    row = run(config, "fetch", "list", BOB).stdout.splitlines()[1]
    assert len(row.split(maxsplit=9)) == 10  # the columns are as they were
    assert row.split(maxsplit=9)[9].startswith("paused until 'pillarbox fetch resume': error:")
    assert "(3 authentication failures in a row)" in row
    resumed = run(config, "fetch", "resume", BOB, source)
    assert (resumed.returncode, resumed.stdout) == (0, "")
    row = run(config, "fetch", "list", BOB).stdout.splitlines()[1]
    assert "paused" not in row and "authentication failures in a row" not in row
    result = run(config, "fetch", "resume", BOB, "999")
    assert result.returncode == 1 and "has no fetch source 999" in result.stderr


def test_private_addresses_need_permission(provider: RunningServer, tmp_path: Path) -> None:
    """Without [fetcher] allow_private_networks, a source on loopback is refused."""
    config = write_config(tmp_path, allow_private=False)
    add_accounts(config, "local.test", [BOB])
    put(provider, message(1))
    add(config, provider, "pop3")
    result = run(config, "fetch", "run", BOB)
    assert (result.returncode, result.stdout) == (1, "0\n")
    assert "loopback, private or link-local address: refused" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message_part"),
    [
        (("--remote", "sometimes"), "not a remote policy"),
        (("--remote", "delete-after:0"), "not a remote policy"),
        (("--source-folder", "Lists"), "POP3 has no folders"),
        (("--all-folders",), "POP3 has no folders"),
        (("--interval", "5"), "at least 60 seconds"),
        (("--folder", "a%b"), "target folder"),
    ],
)
def test_bad_requests_exit_1(
    config: Path, provider: RunningServer, extra: tuple[str, ...], message_part: str
) -> None:
    """Refused requests exit 1 with one line and add nothing."""
    result = run(
        config, "fetch", "add", BOB, "--protocol", "pop3", "--host", "127.0.0.1",
        "--port", "110", "--security", "none", "--user", ALICE, "--password-stdin",
        *extra, stdin=PASSWORD,
    )  # fmt: skip
    assert result.returncode == 1 and message_part in result.stderr, result.stderr
    assert run(config, "fetch", "list", BOB).stdout == ""


def test_unknown_account_and_missing_options(config: Path) -> None:
    """An unknown account and a missing required option are bad requests (exit 1)."""
    result = run(config, "fetch", "list", "nobody@local.test")
    assert result.returncode == 1 and "no account nobody@local.test" in result.stderr
    result = run(config, "fetch", "add", BOB, "--protocol", "pop3", "--host", "h")
    assert result.returncode == 1 and "required" in result.stderr


def run_with_terminal(config: Path, *args: str) -> tuple[int, str, str]:
    """The CLI with stderr on a pseudo-terminal (as a person runs it) and stdout piped:
    (exit status, stdout, what the terminal showed)."""
    main, tty = os.openpty()
    # A new pseudo-terminal is 0 columns wide; a person's is not.
    fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pillarbox", "--config", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=tty,
            text=True,
        )
        os.close(tty)
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal's other end
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(main)
    return proc.returncode, out, shown.decode("utf-8", "replace")


def test_a_large_fetch_shows_progress_on_a_terminal(config: Path, provider: RunningServer) -> None:
    """120 new messages: stderr, a terminal, shows a bar that reaches 120/120; stdout is
    still the bare count. A small fetch draws no bar, and nor does a piped stderr."""
    for n in range(120):
        put(provider, message(n))
    first = add(config, provider, "imap")
    status, out, shown = run_with_terminal(config, "fetch", "run", BOB, first)
    assert (status, out) == (0, "120\n")
    assert "120/120" in shown and f"source {first}" in shown
    put(provider, message(500))
    status, out, shown = run_with_terminal(config, "fetch", "run", BOB, first)
    assert (status, out, shown) == (0, "1\n", "")
    second = add(config, provider, "imap")
    piped = run(config, "fetch", "run", BOB, second)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "121\n", "")
