"""POP3 with getmail6 (Debian package `getmail6`, installed by .ci/run): plain POP3 and
POP3 over implicit TLS, keeping mail on the server (getmail remembers UIDLs, so a second
run fetches only what is new) and deleting it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_pop3 import deliver, message


def getmail(server: RunningServer, home: Path, *, ssl: bool, delete: bool) -> list[bytes]:
    """Run getmail once, delivering into files under `home`; return every message file's
    content, sorted (getmail keeps its UIDL memory in `home` between runs)."""
    out = home / "delivered"
    out.mkdir(parents=True, exist_ok=True)
    # An external MDA (a one-line Python writer) rather than getmail's Maildir: getmail
    # refuses Maildir delivery as root, which is what CI runs as.
    writer = (
        "import sys, uuid; "
        f"open({str(out)!r} + '/' + uuid.uuid4().hex, 'wb').write(sys.stdin.buffer.read())"
    )
    rc = home / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        f"type = {'SimplePOP3SSLRetriever' if ssl else 'SimplePOP3Retriever'}\n"
        "server = 127.0.0.1\n"
        f"port = {server.port('pop3s' if ssl else 'pop3')}\n"
        "username = alice@example.test\n"
        f"password = {PASSWORD}\n"
        "[destination]\n"
        "type = MDA_external\n"
        f"path = {sys.executable}\n"
        f"arguments = ('-c', {writer!r})\n"
        "allow_root_commands = true\n"
        "[options]\n"
        f"delete = {'true' if delete else 'false'}\n"
        "read_all = false\n"
        "verbose = 0\n"
    )
    res = subprocess.run(
        ["getmail", f"--getmaildir={home}", f"--rcfile={rc}"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert res.returncode == 0, (res.stdout + res.stderr).decode()
    return sorted(p.read_bytes() for p in out.iterdir())


@pytest.mark.parametrize("ssl", [False, True], ids=["pop3", "pop3s"])
def test_getmail_keeps_then_fetches_only_new(
    server: RunningServer, tmp_path: Path, ssl: bool
) -> None:
    """Without delete, getmail downloads both messages once (dot-stuffed line intact);
    a second run finds nothing new; after a third delivery it fetches just that one."""
    deliver(server, message(1) + b".starts with a dot\r\n")
    deliver(server, message(2))
    first = getmail(server, tmp_path, ssl=ssl, delete=False)
    assert len(first) == 2
    assert any(b"\n.starts with a dot\n" in m for m in first)
    assert getmail(server, tmp_path, ssl=ssl, delete=False) == first
    deliver(server, message(3))
    assert len(getmail(server, tmp_path, ssl=ssl, delete=False)) == 3


@pytest.mark.parametrize("ssl", [False, True], ids=["pop3", "pop3s"])
def test_getmail_delete_empties_the_maildrop(
    server: RunningServer, tmp_path: Path, ssl: bool
) -> None:
    """With delete, getmail takes both messages and the next POP3 session (a fresh
    getmail state directory, so no UIDL memory) finds the maildrop empty."""
    deliver(server, message(1))
    deliver(server, message(2, size=300_000))
    assert len(getmail(server, tmp_path / "a", ssl=ssl, delete=True)) == 2
    assert getmail(server, tmp_path / "b", ssl=ssl, delete=True) == []
