"""The verified-credentials cache seen by IMAP clients (issue 18): repeated logins skip
argon2id, and a password change or removal made by `pillarbox user passwd` / `user remove`
in another process refuses the remembered old password at once; a wrong password after a
remembered one still fails and slows down."""

from __future__ import annotations

import imaplib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer

pytestmark = pytest.mark.both_backends

ALICE = "alice@example.test"
NEW_PASSWORD = "a brand new passphrase"


def login(server: RunningServer, user: str, password: str) -> bool:
    """Whether a fresh IMAP connection's LOGIN succeeds."""
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=60)
    try:
        client.login(user, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        client.shutdown()
    return True


def cli(server: RunningServer, tmp_path: Path, *args: str, stdin: str = "") -> None:
    """`pillarbox user …` in a process of its own, on the running server's store."""
    config = server.config
    text = f'[server]\ndata_dir = "{config.server.data_dir}"\nhostname = "mail.example.test"\n'
    if config.server.store == "postgres":
        text += f'store = "postgres"\nnode_id = "cli-test"\n[store]\ndsn = "{config.store.dsn}"\n'
    path = tmp_path / "cli.toml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PILLARBOX_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "pillarbox", "--config", str(path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_password_changed_by_the_cli_refuses_the_remembered_one(
    server: RunningServer, tmp_path: Path
) -> None:
    auth = server.services.auth
    assert login(server, ALICE, PASSWORD) and login(server, ALICE, PASSWORD)
    assert auth.argon2_checks == 1  # the second login was answered from the cache
    cli(server, tmp_path, "user", "passwd", ALICE, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert not login(server, ALICE, PASSWORD)
    assert login(server, ALICE, NEW_PASSWORD) and login(server, ALICE, NEW_PASSWORD)
    assert auth.argon2_checks == 3  # refused old (checked), new once, then cached
    cli(server, tmp_path, "user", "remove", ALICE)
    assert not login(server, ALICE, NEW_PASSWORD)


def test_a_wrong_password_after_a_remembered_one_fails_and_slows_down(
    server_factory: type[RunningServer],
) -> None:
    srv = server_factory(auth={"fail_delay": 0.2, "fail_delay_max": 0.2})
    assert login(srv, ALICE, PASSWORD)
    assert not login(srv, ALICE, PASSWORD + "!")
    assert srv.call(lambda: srv.services.auth.ip_delay("127.0.0.1")) == 0.2
    assert login(srv, ALICE, PASSWORD)  # remembered: no argon2id, and the delay is reset
    assert srv.services.auth.argon2_checks == 2
    assert srv.call(lambda: srv.services.auth.ip_delay("127.0.0.1")) == 0.0
