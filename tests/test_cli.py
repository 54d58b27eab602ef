"""The CLI contract used by scripts: silent success, one clear line and non-zero on failure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

PASSWORD = "a long enough passphrase"


def run(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PILLARBOX_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "pillarbox", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text('[server]\ndata_dir = "var"\nhostname = "mail.example.test"\n')
    return path


def test_user_lifecycle_is_scriptable(config: Path) -> None:
    """domain add / user add --password-stdin print nothing and succeed; list shows them."""
    result = run(config, "domain", "add", "example.test")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    result = run(config, "user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    # Without the flag, a non-terminal stdin is read as well.
    result = run(config, "user", "add", "Bob@Example.test", stdin=PASSWORD + "\n")
    assert (result.returncode, result.stderr) == (0, "")
    assert run(config, "user", "list").stdout.split() == [
        "alice@example.test",
        "bob@example.test",
    ]
    assert run(config, "domain", "list").stdout.split() == ["example.test"]
    mailboxes = run(config, "mailbox", "list", "alice@example.test").stdout.splitlines()
    assert sorted(m.split()[0] for m in mailboxes) == sorted(
        ["INBOX", "Drafts", "Sent", "Junk", "Trash", "Archive"]
    )
    assert "Sent (\\Sent)" in mailboxes
    result = run(config, "user", "passwd", "alice@example.test", "--password-stdin", stdin="x")
    assert result.returncode == 1 and "too short" in result.stderr
    result = run(
        config, "user", "passwd", "alice@example.test", "--password-stdin", stdin=PASSWORD + "2"
    )
    assert result.returncode == 0
    result = run(config, "alias", "add", "postmaster@example.test", "alice@example.test")
    assert result.returncode == 0, result.stderr
    result = run(config, "alias", "add", "@example.test", "bob@example.test")
    assert result.returncode == 0, result.stderr
    assert "postmaster@example.test -> alice@example.test" in run(config, "alias", "list").stdout
    assert run(config, "alias", "remove", "@example.test").returncode == 0
    assert run(config, "user", "remove", "bob@example.test").returncode == 0
    assert run(config, "user", "list").stdout.split() == ["alice@example.test"]
    result = run(config, "domain", "remove", "example.test")
    assert result.returncode == 1 and "still has accounts" in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("user", "add", "alice@nowhere.test", "--password-stdin"), PASSWORD, "unknown domain"),
        (("user", "add", "alice@example.test", "--password-stdin"), "", "password is empty"),
        (("user", "add", "alice@example.test", "--password-stdin"), "abc", "too short"),
        (("user", "add", "alice@example.test", "--password-stdin"), "password", "too weak"),
        (("user", "add", "alice@example.test", "--password-stdin"), "password1", "too weak"),
        (("user", "add", "not-an-address", "--password-stdin"), PASSWORD, "invalid address"),
        (("user", "remove", "ghost@example.test"), "", "no such user"),
        (("domain", "add", "bad_domain!"), "", "invalid domain"),
        (("alias", "add", "x@nowhere.test", "alice@example.test"), "", "unknown domain"),
    ],
)
def test_bad_input_gives_one_line(
    config: Path, args: tuple[str, ...], stdin: str, message: str
) -> None:
    """Each refusal is a single stderr line with the reason, exit status 1."""
    assert run(config, "domain", "add", "example.test").returncode == 0
    result = run(config, *args, stdin=stdin)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_duplicate_user_refused(config: Path) -> None:
    run(config, "domain", "add", "example.test")
    run(config, "user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD)
    result = run(config, "user", "add", "alice@example.test", "--password-stdin", stdin=PASSWORD)
    assert result.returncode == 1 and "already exists" in result.stderr


def test_bad_config_exits_2(tmp_path: Path) -> None:
    """check-config and every other command refuse a bad file with exit status 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[listen]\nsmtp = '127.0.0.1:99999'\n")
    for args in (("check-config",), ("domain", "list")):
        result = run(bad, *args)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "pillarbox: listen.smtp: port 99999 is out of range 0-65535"
        )


def test_check_config_ok(config: Path) -> None:
    """Silent on success, like every other command (issue 16 item 7)."""
    result = run(config, "check-config")
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_usage_errors_exit_1_not_the_configuration_code(config: Path) -> None:
    """No command, an unknown command or option: a bad request (1), with the usage; 2 is
    kept for configuration problems (issue 16 item 7)."""
    for args in ((), ("frobnicate",), ("user", "list", "--bogus")):
        result = run(config, *args)
        assert result.returncode == 1, args
        assert result.stderr.startswith("usage: pillarbox"), result.stderr


def test_user_list_of_an_unknown_domain_is_an_error(config: Path) -> None:
    run(config, "domain", "add", "example.test")
    assert run(config, "user", "list", "example.test").returncode == 0
    result = run(config, "user", "list", "nosuch.org")
    assert result.returncode == 1 and result.stdout == ""
    assert (
        result.stderr.strip() == "pillarbox: unknown domain: nosuch.org (add it with 'domain add')"
    )


def test_help_on_every_command() -> None:
    """--help works for the program and each subcommand."""
    for args in (
        (),
        ("serve",),
        ("check-config",),
        ("domain",),
        ("domain", "add"),
        ("user",),
        ("user", "add"),
        ("user", "pop"),
        ("alias", "add"),
        ("mailbox", "list"),
        ("queue",),
        ("queue", "retry"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "pillarbox", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, args
        assert "usage:" in result.stdout


def test_user_quota(config: Path) -> None:
    """`user quota ADDRESS SIZE` sets the limit (K/M/G suffixes, 0 or none to lift it),
    refuses a bad size or an unknown user with one line, and the store enforces it."""
    assert run(config, "domain", "add", "example.test").returncode == 0
    assert (
        run(config, "user", "add", "q@example.test", "--password-stdin", stdin=PASSWORD).returncode
        == 0
    )
    result = run(config, "user", "quota", "Q@example.test", "500M")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    result = run(config, "user", "quota", "q@example.test", "lots")
    assert result.returncode == 1 and "not a size" in result.stderr
    assert result.stderr.count("\n") == 1
    result = run(config, "user", "quota", "q@example.test", "99999999999T")
    assert result.returncode == 1 and "that large" in result.stderr
    assert "Traceback" not in result.stderr
    result = run(config, "user", "quota", "nobody@example.test", "1G")
    assert result.returncode == 1 and "no such user" in result.stderr
    assert run(config, "user", "quota", "q@example.test", "none").returncode == 0


def _limits(config: Path, address: str) -> tuple[int, int]:
    """The account's (byte, message) limits as the store holds them."""
    from pillarbox import config as config_mod
    from pillarbox.backends import open_store

    async def go() -> tuple[int, int]:
        store = open_store(config_mod.load(config))
        await store.open()
        try:
            account = await store.get_account(address)
            assert account is not None
            return account.quota_bytes, account.quota_messages
        finally:
            await store.close()

    return asyncio.run(go())


def test_user_quota_storage_and_messages(config: Path) -> None:
    """`user quota ADDRESS --storage SIZE --messages N` (RFC 9208 STORAGE and MESSAGE)
    sets both limits, either option alone leaves the other limit as it is, the older
    positional SIZE sets the byte limit only, and 0 or none lifts a limit; a SIZE with
    --storage, no limit at all, or a count that is not a number fail with one line."""
    assert run(config, "domain", "add", "example.test").returncode == 0
    added = run(config, "user", "add", "q@example.test", "--password-stdin", stdin=PASSWORD)
    assert added.returncode == 0
    quota = ("user", "quota", "q@example.test")
    result = run(config, *quota, "--storage", "2G", "--messages", "100000")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert _limits(config, "q@example.test") == (2 * 2**30, 100000)
    assert run(config, "user", "quota", "Q@example.test", "--messages", "50").returncode == 0
    assert _limits(config, "q@example.test") == (2 * 2**30, 50)
    assert run(config, "user", "quota", "q@example.test", "500M").returncode == 0
    assert _limits(config, "q@example.test") == (500 * 2**20, 50)
    assert run(config, "user", "quota", "q@example.test", "--storage", "0").returncode == 0
    assert _limits(config, "q@example.test") == (0, 50)
    assert run(config, "user", "quota", "q@example.test", "--messages", "none").returncode == 0
    assert _limits(config, "q@example.test") == (0, 0)
    for args, message in (
        (("1G", "--storage", "2G"), "not both"),
        ((), "give a limit"),
        (("--messages", "lots"), "not a number of messages"),
        (("--messages", "-5"), "not a number of messages"),
        (("--storage", "lots"), "not a size"),
    ):
        result = run(config, "user", "quota", "q@example.test", *args)
        assert result.returncode == 1 and message in result.stderr, args
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = run(config, "user", "quota", "nobody@example.test", "--messages", "5")
    assert result.returncode == 1 and "no such user" in result.stderr
    assert _limits(config, "q@example.test") == (0, 0)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("500M", 500 * 2**20),
        ("2g", 2 * 2**30),
        ("10KiB", 10240),
        ("0", 0),
        ("none", 0),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    from pillarbox.cli import parse_size

    assert parse_size(text) == size


def _enqueue(config: Path) -> list[int]:
    """Two queue entries through the store the configuration names (as the server would
    leave them): one from the null sender to two recipients, one already retried with a
    multi-line error and one recipient delivered."""
    from pillarbox import config as config_mod
    from pillarbox.backends import open_store
    from pillarbox.model import QueuedRecipient, RecipientOutcome, RecipientState

    async def go() -> list[int]:
        cfg = config_mod.load(config)
        config_mod.check_data_dir(cfg)
        store = open_store(cfg)
        await store.open()
        try:
            ids = []
            for sender, rcpts in (
                ("", ["x@far.test"]),
                ("alice@example.test", ["a@x.test", "b@y.test"]),
            ):
                writer = store.new_blob()
                await writer.write(b"From: alice@example.test\r\nSubject: hello\r\n\r\nbody\r\n")
                blob = await writer.finish()
                ids.append(await store.enqueue(sender, [QueuedRecipient(r) for r in rcpts], blob))
            outcome = RecipientOutcome(0, RecipientState.DELIVERED, "2.0.0", "250 ok", "mx.x.test")
            await store.record_outcomes(ids[1], [outcome])
            when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
            await store.reschedule(ids[1], when, "451 4.7.1 greylisted\r\n451 try later")
            return ids
        finally:
            await store.close()

    return asyncio.run(go())


def test_queue_commands(config: Path) -> None:
    """`queue list` prints nothing for an empty queue, else a header and one line per
    entry (id, sender or <>, pending recipients, attempts, next try in UTC, last error
    on one line); `queue show` every field, each recipient's state and the headers;
    `queue retry [ID]` how many entries it made due; `queue delete ID` nothing. An
    unknown ID is one line on stderr and exit status 1."""
    result = run(config, "queue", "list")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    first, second = _enqueue(config)

    lines = run(config, "queue", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "SENDER", "RECIPIENTS", "ATTEMPTS", "NEXT-TRY", "LAST-ERROR"]
    assert lines[1].split(None, 5)[:4] == [str(first), "<>", "x@far.test", "0"]
    assert lines[1].split(None, 5)[5] == "-"
    assert lines[2].split(None, 5) == [
        str(second),
        "alice@example.test",
        "b@y.test",
        "1",
        "2030-01-02T03:04:05Z",
        "451 4.7.1 greylisted 451 try later",
    ]
    assert len(lines) == 3

    result = run(config, "queue", "show", str(second))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    for expected in (
        f"id: {second}",
        "sender: <alice@example.test>",
        "origin: forward",
        "next-try: 2030-01-02T03:04:05Z",
        "attempts: 1",
        "last-error: 451 4.7.1 greylisted 451 try later",
        "delay-warning-sent: no",
        "held-until: -",
        "recipients:",
        "headers:",
        "  Subject: hello",
    ):
        assert expected in out, (expected, out)
    rcpt_lines = [
        line.split() for line in out if line.startswith("  0  ") or line.startswith("  1  ")
    ]
    assert rcpt_lines[0][:5] == [
        "0",
        "a@x.test",
        "delivered",
        "status=2.0.0",
        "remote-mta=mx.x.test",
    ]
    assert rcpt_lines[1][:3] == ["1", "b@y.test", "queued"]
    assert "sender: <>" in run(config, "queue", "show", str(first)).stdout

    assert run(config, "queue", "retry").stdout == "2 entries due now\n"
    assert run(config, "queue", "retry", str(second)).stdout == "1 entry due now\n"
    result = run(config, "queue", "delete", str(first))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert [line.split()[0] for line in run(config, "queue", "list").stdout.splitlines()] == [
        "ID",
        str(second),
    ]
    for args in (("show", "999"), ("retry", "999"), ("delete", str(first))):
        result = run(config, "queue", *args)
        assert result.returncode == 1, args
        assert (
            result.stderr.endswith(f"no queue entry {args[1]}\n") and result.stderr.count("\n") == 1
        )
