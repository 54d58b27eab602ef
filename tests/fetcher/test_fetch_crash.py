"""SIGKILL of `pillarbox serve` in the middle of a 300-message first fetch: after the
restart every message is here exactly once, none is lost, and none was deleted at the
provider without a durable copy here."""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import re
from pathlib import Path

import pytest

from pillarbox.config import ListenConfig
from pillarbox.message.parse import parse
from pillarbox.store.sqlite import SqliteStore
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.mtas import wait_until
from tests.e2e.serve import ServeProcess, add_accounts, cli
from tests.fetcher.conftest import ALICE, BOB, message, put, remote_subjects

COUNT = 300
FILLER = "x" * 76 + "\r\n"  # bodies of ~40 kB, so the fetch takes long enough to cut


def write_config(tmp: Path) -> Path:
    config = tmp / "local.toml"
    # Every listener but IMAP off (http too: a test must not take 127.0.0.1:8080).
    off = "\n".join(f'{f.name} = ""' for f in dataclasses.fields(ListenConfig) if f.name != "imap")
    config.write_text(
        "[server]\n"
        'hostname = "mail.local.test"\n'
        f'data_dir = "{tmp / "data"}"\n'
        "[listen]\n"
        'imap = "127.0.0.1:0"\n'
        f"{off}\n"
        "[fetcher]\n"
        "allow_private_networks = true\n"
        "timeout = 30.0\n"
    )
    return config


def local_subjects(port: int) -> list[str]:
    """bob's INBOX here, one subject per message (duplicates kept)."""
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(BOB, PASSWORD)
        typ, count = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        if count[0] == b"0":
            return []
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [
            item[1].decode().strip().removeprefix("Subject: ")
            for item in data
            if isinstance(item, tuple)
        ]
    finally:
        imap.logout()


async def stored_subjects(data_dir: Path) -> list[str]:
    """bob's INBOX read from the store of a server that is not running."""
    store = SqliteStore(data_dir)
    await store.open()
    try:
        account = await store.get_account(BOB)
        assert account is not None
        box = await store.get_mailbox(account.id, "INBOX")
        assert box is not None
        uids = await store.uids(box.id)
        return [parse(await store.read_message(box.id, uid)).subject for uid in uids]
    finally:
        await store.close()


def local_count(port: int) -> int:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login(BOB, PASSWORD)
        typ, data = imap.status("INBOX", "(MESSAGES)")
        assert typ == "OK"
        found = re.search(rb"MESSAGES (\d+)", data[0] if isinstance(data[0], bytes) else b"")
        assert found is not None
        return int(found.group(1))
    finally:
        imap.logout()


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_sigkill_mid_fetch_loses_and_duplicates_nothing(
    provider: RunningServer, tmp_path: Path, protocol: str
) -> None:
    """With --remote delete: the server is killed once some messages are here; the
    provider still has every message not here; after the restart the scheduler finishes
    the fetch: all 300 here once each, none left at the provider, and one more run
    fetches nothing."""
    everything = sorted(f"message {n}" for n in range(COUNT))
    for n in range(COUNT):
        put(provider, message(n, extra=f"X-Filler: {n}\r\n") + (FILLER * 500).encode())
    config = write_config(tmp_path)
    add_accounts(config, "local.test", [BOB])
    listener = "pop3" if protocol == "pop3" else "imap"
    source = cli(
        config,
        *("fetch", "add", BOB, "--protocol", protocol, "--host", "127.0.0.1"),
        *("--port", str(provider.port(listener)), "--security", "none", "--user", ALICE),
        *("--password-stdin", "--remote", "delete"),
        stdin=PASSWORD,
    ).strip()
    log = tmp_path / "serve.log"
    server = ServeProcess(config, ("imap",), log)  # the scheduler runs the new source at once
    try:
        wait_until(lambda: local_count(server.port) >= 20, "the fetch under way", 60, 0.02)
    finally:
        server.kill()
    # With the server dead: what is here (read from its store) and what is left there.
    here = asyncio.run(stored_subjects(tmp_path / "data"))
    remote = remote_subjects(provider)
    assert len(here) < COUNT, "the fetch ended before the kill: it cut nothing"
    assert len(here) == len(set(here))  # nothing twice
    assert set(everything) - set(remote) <= set(here)  # nothing gone from both sides
    restarted = ServeProcess(config, ("imap",), log)
    try:
        wait_until(lambda: local_count(restarted.port) >= COUNT, "the fetch finished", 120)
        wait_until(lambda: remote_subjects(provider) == [], "the remote copies deleted", 60)
        assert sorted(local_subjects(restarted.port)) == everything  # each exactly once
        assert cli(config, "fetch", "run", BOB, source) == "0\n"
        assert sorted(local_subjects(restarted.port)) == everything
    finally:
        restarted.stop()
