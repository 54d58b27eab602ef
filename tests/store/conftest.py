"""Fixtures for the store contract tests.

Every test here takes the `store` fixture and so runs once per backend in
`tests/store/backends.py`. Values are given in canonical form, as services give them
(`rules.addresses`, `rules.mailbox_names`): the store does not normalise.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pillarbox.model import Account, Mailbox, MessageMeta
from pillarbox.store.api import BlobHandle, ChangeBus, Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import NotFound
from tests.store.backends import BACKENDS


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus() -> Iterator[ChangeBus]:
    """The change bus the store under test publishes to (the application owns it)."""
    changes = InProcessChangeBus()
    yield changes
    changes.close()


@pytest.fixture
def make_store(backend: str, tmp_path: Path, bus: ChangeBus) -> Callable[[], Store]:
    """A factory for stores over the same data directory (to test close + reopen)."""
    data = tmp_path / "data"
    return lambda: BACKENDS[backend](data, bus)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def dummy_meta(
    body: bytes,
    *,
    subject: str = "",
    from_: str = "",
    to: str = "",
    headers: str = "",
    text: str = "",
    sent_date: datetime | None = None,
    message_id: str = "",
    references: str = "",
    in_reply_to: str = "",
) -> MessageMeta:
    """A small MessageMeta; the store stores it as given and never parses mail."""
    return MessageMeta(
        size=len(body),
        envelope=b'(NIL "' + subject.encode() + b'" NIL NIL NIL NIL NIL NIL NIL NIL)',
        bodystructure=b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1)',
        body=b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1)',
        parts='{"parts": []}',
        subject=subject,
        from_=from_,
        to=to,
        headers=headers,
        body_text=text,
        sent_date=sent_date,
        preview=text[:200],
        message_id=message_id,
        references=references,
        in_reply_to=in_reply_to,
    )


async def write_blob(store: Store, data: bytes) -> BlobHandle:
    writer = store.new_blob()
    # write in two pieces so buffering across writes is exercised
    await writer.write(data[: len(data) // 2])
    await writer.write(data[len(data) // 2 :])
    return await writer.finish()


async def blob_gone(store: Store, blob_id: int, timeout: float = 10.0) -> bool:
    """Whether `blob_id` reads as NotFound within `timeout`: a blob freed by an expunge
    or flag-only batch may outlive the answer until a sync makes the removal durable
    (SQLite: `held_files`), so a test waits for that condition rather than the answer."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await store.read_blob(blob_id)
        except NotFound:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Env:
    store: Store
    bus: ChangeBus
    account: Account
    inbox: Mailbox

    async def add(
        self,
        data: bytes = b"Subject: hi\r\n\r\nhello\r\n",
        flags: frozenset[str] = frozenset(),
        mailbox_id: int | None = None,
        internaldate: datetime | None = None,
        **meta: object,
    ) -> int:
        blob = await write_blob(self.store, data)
        result = await self.store.append(
            mailbox_id or self.inbox.id,
            blob,
            dummy_meta(data, **meta),  # type: ignore[arg-type]
            flags,
            internaldate or datetime(2024, 5, 17, 10, 0, tzinfo=UTC),
        )
        return result.uid


@pytest.fixture
async def env(store: Store, bus: ChangeBus) -> Env:
    await store.add_domain("example.org")
    account = await store.add_account("alice@example.org", "$argon2id$dummy")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    return Env(store, bus, account, inbox)


Waiter = Callable[[Callable[[], Awaitable[bool]]], Awaitable[None]]
