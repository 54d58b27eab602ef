"""Two Pillarboxes: a real server on 127.0.0.1 playing the other provider (alice's
account there), and a local store with its fetch services (bob@local.test here), which
is what `pillarbox fetch run` works on.

Private networks are allowed in these settings (the provider is on loopback) unless a
test builds its own runner; `--security none` is used on loopback, and TLS with the
provider's self-signed certificate as the CA where TLS itself is under test.
"""

from __future__ import annotations

import dataclasses
import imaplib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pillarbox.fetcher.runner import FetcherSettings, RunReport, SourceRunner
from pillarbox.message.parse import parse
from pillarbox.model import Account, MessageMeta
from pillarbox.model.fetch import FetchSource
from pillarbox.services.fetch_delivery import FetchDelivery
from pillarbox.services.fetch_sources import (
    KEY_FILE,
    FetchSourceService,
    SecretBox,
    SourceRequest,
)
from pillarbox.store.sqlite import SqliteStore
from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision
from tests.fetcher.fake import FakeServer

ALICE = "alice@example.test"  # at the provider
BOB = "bob@local.test"  # here


def message(n: int, *, to: str = ALICE, extra: str = "") -> bytes:
    return (
        f"From: carol@other.test\r\nTo: {to}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@other.test>\r\n{extra}\r\n"
        f".a dotted line of message {n}\r\nbody {n}\r\n"
    ).encode()


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


def put(server: RunningServer, data: bytes, folder: str = "INBOX", address: str = ALICE) -> int:
    """A message into the provider's mailbox through its store (what delivery does)."""

    async def op() -> int:
        store = server.store
        account = await store.get_account(address)
        box = await store.get_mailbox(account.id, folder)
        if box is None:
            box = await store.create_mailbox(account.id, folder)
        writer = store.new_blob()
        await writer.write(data)
        blob = await writer.finish()
        meta = MessageMeta(**dataclasses.asdict(parse(data)))
        return int((await store.append(box.id, blob, meta)).uid)

    return server.call(op)


def remote_subjects(server: RunningServer, folder: str = "INBOX") -> list[str]:
    """What alice sees at the provider, over IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    try:
        imap.login(ALICE, PASSWORD)
        typ, _ = imap.select(f'"{folder}"', readonly=True)
        assert typ == "OK"
        # By UID: valid on an empty mailbox too. The count SELECT reports may already be
        # out of date when it ends (the fetcher expunging meanwhile: SELECT's response
        # then also holds EXPUNGEs), and FETCH 1:* of no messages is a BAD.
        typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        subjects = []
        for item in data:
            if isinstance(item, tuple):
                subjects.append(item[1].decode().strip().removeprefix("Subject: "))
        return sorted(subjects)
    finally:
        imap.logout()


@dataclass
class Local:
    store: SqliteStore
    sources: FetchSourceService
    runner: SourceRunner
    account: Account
    data_dir: Path

    async def add(self, server: RunningServer, protocol: str, **changes: object) -> FetchSource:
        values: dict[str, object] = {
            "protocol": protocol,
            "host": "127.0.0.1",
            "port": server.port("pop3" if protocol == "pop3" else "imap"),
            "security": "none",
            "username": ALICE,
            "password": PASSWORD,
        }
        values.update(changes)
        return await self.sources.add(BOB, SourceRequest(**values))  # type: ignore[arg-type]

    async def run(self, source: FetchSource) -> RunReport:
        fresh = await self.store.get_fetch_source(source.id)
        assert fresh is not None
        return await self.runner.run(fresh)

    async def subjects(self, folder: str = "INBOX") -> list[str]:
        return sorted(parse(data).subject for data in await self.messages(folder))

    async def messages(self, folder: str = "INBOX") -> list[bytes]:
        box = await self.store.get_mailbox(self.account.id, folder)
        assert box is not None
        return [await self.store.read_message(box.id, u) for u in await self.store.uids(box.id)]


LocalFactory = Callable[..., "AsyncIterator[Local]"]


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Local]:
    store = SqliteStore(tmp_path / "local")
    await store.open()
    try:
        await store.add_domain("local.test")
        account = await store.add_account(BOB, "$argon2id$dummy")
        sources = FetchSourceService(store, SecretBox(tmp_path / "local" / KEY_FILE))
        delivery = FetchDelivery(store, hostname="mail.local.test")
        runner = SourceRunner(sources, delivery, FetcherSettings(allow_private=True, timeout=20))
        yield Local(store, sources, runner, account, tmp_path / "local")
    finally:
        await store.close()


@pytest.fixture
def fake() -> Iterator[list[FakeServer]]:
    """Scripted servers a test starts; each is joined and closed at the end."""
    servers: list[FakeServer] = []
    yield servers
    for server in servers:
        server.close()
