"""DeliveryService on a real SQLite store: recipient resolution rules, and local delivery
that parses once yet gives every copy the metadata a fresh parse of it would give."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pillarbox.message import parse
from pillarbox.model import QueueOrigin
from pillarbox.services.delivery import (
    DeliveryService,
    Envelope,
    LocalTarget,
    Recipient,
    received_header,
    shift_meta,
    with_protocol,
)
from pillarbox.services.errors import OverQuota, Rejected, TempFailure
from pillarbox.store.api import Store
from pillarbox.store.sqlite import SqliteStore

MULTIPART = (
    b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: parts\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
    b"--XX--\r\n"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    await s.add_domain("other.test")
    await s.add_domain("xn--exmple-cua.test")  # exämple.test
    for user in (
        "alice@example.test",
        "bob@example.test",
        "carol@other.test",
        "jo@xn--exmple-cua.test",
    ):
        await s.add_account(user, "not-a-real-hash")
    yield s
    await s.close()


@pytest.fixture
def delivery(store: Store) -> DeliveryService:
    return DeliveryService(store, hostname="mail.example.test")


def targets(rcpt: Recipient) -> list[str]:
    return [t.delivered_to for t in rcpt.local]


async def test_resolve_accounts_aliases_catch_all_subaddress(
    store: Store, delivery: DeliveryService
) -> None:
    await store.add_alias("team@example.test", ["alice@example.test", "bob@example.test"])
    await store.add_alias("chain@example.test", ["team@example.test", "far@remote.test"])
    await store.add_alias("@other.test", ["carol@other.test"])
    await store.add_alias("loop1@example.test", ["loop2@example.test"])
    await store.add_alias("loop2@example.test", ["loop1@example.test", "bob@example.test"])
    resolve = delivery.resolve
    assert targets(await resolve("Alice@Example.TEST", relay_allowed=False)) == [
        "alice@example.test"
    ]
    assert targets(await resolve("team@example.test", relay_allowed=False)) == [
        "alice@example.test",
        "bob@example.test",
    ]
    chain = await resolve("chain@example.test", relay_allowed=False)
    assert len(chain.local) == 2 and chain.remote == ("far@remote.test",)
    assert targets(await resolve("anything@other.test", relay_allowed=False)) == [
        "carol@other.test"
    ]
    assert targets(await resolve("alice+news@example.test", relay_allowed=False)) == [
        "alice+news@example.test"
    ]
    assert targets(await resolve("team+x@example.test", relay_allowed=False)) == [
        "alice+x@example.test",
        "bob+x@example.test",
    ]
    assert targets(await resolve("loop1@example.test", relay_allowed=False)) == ["bob@example.test"]
    assert targets(await resolve("jo@exämple.test", relay_allowed=False)) == [
        "jo@xn--exmple-cua.test"
    ]


@pytest.mark.parametrize(
    ("address", "status"),
    [
        ("nobody@example.test", "5.1.1"),
        ("alice%remote.test@example.test", "5.1.1"),
        ("remote.test!alice@example.test", "5.1.1"),
        ('"alice@remote.test"@example.test', "5.1.1"),
        ("+tag@example.test", "5.1.1"),
        ("alice@remote.test", "5.7.1"),
        ("alice@[127.0.0.1]", "5.7.1"),
        ("alice@example.test.remote.test", "5.7.1"),
        ("alice@exämple.test.evil", "5.7.1"),
    ],
)
async def test_resolve_refusals(delivery: DeliveryService, address: str, status: str) -> None:
    with pytest.raises(Rejected) as info:
        await delivery.resolve(address, relay_allowed=False)
    assert (type(info.value), info.value.status) == (Rejected, status)


async def test_postmaster_always_accepted(store: Store, delivery: DeliveryService) -> None:
    """RFC 5321 §4.5.1: <Postmaster> and postmaster@ each local domain are accepted even
    with no such account; the domain's first account gets the mail unless an alias says
    otherwise."""
    assert targets(await delivery.resolve("Postmaster", relay_allowed=False)) == [
        "alice@example.test"
    ]
    assert targets(await delivery.resolve("POSTMASTER@other.test", relay_allowed=False)) == [
        "carol@other.test"
    ]
    await store.add_alias("postmaster@example.test", ["bob@example.test"])
    assert targets(await delivery.resolve("postmaster@example.test", relay_allowed=False)) == [
        "bob@example.test"
    ]


async def test_relay_allowed_goes_remote(delivery: DeliveryService) -> None:
    rcpt = await delivery.resolve("x@remote.test", relay_allowed=True, notify="NEVER")
    assert rcpt.remote == ("x@remote.test",) and rcpt.local == () and rcpt.notify == "NEVER"


def test_shifted_meta_equals_fresh_parse() -> None:
    """Swapping the per-recipient prefix and shifting offsets gives exactly what parsing
    the copy would give, for a multipart message with a nested message."""
    body = (
        received_header(
            hostname="h.test",
            helo="c",
            client_ip="::1",
            protocol="ESMTP",
            trace_id="ID",
            tls=None,
            for_address=None,
            when=datetime(2024, 1, 1, tzinfo=UTC),
        )
        + MULTIPART
    )
    first = b"Return-Path: <s@r.test>\r\nDelivered-To: alice@example.test\r\n"
    other = b"Return-Path: <s@r.test>\r\nDelivered-To: robert.longername+tag@example.test\r\n"
    meta = parse(first + body)
    for prefix, old_split, old_lines in ((other, len(first), 2), (b"", len(first), 2)):
        text = prefix.decode().replace("\r\n", "\n")
        shifted = shift_meta(
            meta,
            split=old_split,
            old_lines=old_lines,
            new_prefix=text,
            delta=len(prefix) - old_split,
        )
        assert shifted == parse(prefix + body)
    common = parse(body)
    shifted = shift_meta(
        common,
        split=0,
        old_lines=0,
        new_prefix=other.decode().replace("\r\n", "\n"),
        delta=len(other),
    )
    assert shifted == parse(other + body)


def envelope(*recipients: Recipient, sender: str = "s@remote.test") -> Envelope:
    return Envelope(
        sender=sender,
        recipients=recipients,
        helo="client.test",
        client_ip="127.0.0.1",
        protocol=with_protocol(extended=True, tls=False, authenticated=False, utf8=False),
    )


async def stored(store: Store, address: str) -> list[bytes]:
    account = await store.get_account(address)
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    return [await store.read_message(box.id, uid) for uid in await store.uids(box.id)]


async def check_rows_match_files(store: Store, address: str) -> None:
    """The precomputed row of every stored copy equals a fresh parse of its file."""
    account = await store.get_account(address)
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    assert box is not None
    uids = await store.uids(box.id)
    for info in await store.fetch(box.id, uids):
        data = await store.read_message(box.id, info.uid)
        fresh = parse(data)
        assert (info.size, info.parts, info.envelope, info.bodystructure, info.body) == (
            fresh.size,
            fresh.parts,
            fresh.envelope,
            fresh.bodystructure,
            fresh.body,
        )


@pytest.mark.parametrize("chunk", [7, 65536])
@pytest.mark.parametrize("big", [False, True])
async def test_deliver_to_several_local_and_remote(
    store: Store, delivery: DeliveryService, chunk: int, big: bool
) -> None:
    """Copies for several mailboxes, streamed in small or large chunks, small or large
    (beyond the in-memory threshold): each copy has its own Delivered-To and correct rows;
    the queued copy is the common part."""
    message = MULTIPART + (b"x" * 998 + b"\r\n") * (1500 if big else 1)
    rcpts = [
        await delivery.resolve(a, relay_allowed=True)
        for a in ("bob@example.test", "alice@example.test", "far@remote.test")
    ]
    for with_remote in (False, True):
        incoming = delivery.begin(envelope(*(rcpts if with_remote else rcpts[:2])))
        for i in range(0, len(message), chunk):
            await incoming.write(message[i : i + chunk])
        result = await incoming.finish()
        assert len(result.delivered) == 2
        assert (result.queue_id is not None) == with_remote
    for user in ("bob@example.test", "alice@example.test"):
        copies = await stored(store, user)
        assert len(copies) == 2
        for copy in copies:
            assert copy.startswith(
                b"Return-Path: <s@remote.test>\r\nDelivered-To: " + user.encode()
            )
            assert copy.endswith(message)
        await check_rows_match_files(store, user)
    (queued,) = await store.list_queue()
    assert [r.address for r in queued.recipients] == ["far@remote.test"]


async def test_abort_leaves_no_file(
    store: Store, delivery: DeliveryService, tmp_path: Path
) -> None:
    rcpt = await delivery.resolve("bob@example.test", relay_allowed=False)
    incoming = delivery.begin(envelope(rcpt))
    await incoming.write(MULTIPART * 2000)
    await incoming.abort()
    assert os.listdir(tmp_path / "data" / "blobs" / "tmp") == []
    assert _blob_files(tmp_path) == []
    assert await stored(store, "bob@example.test") == []


async def test_header_filter_rejection_is_raised_at_finish(
    store: Store, delivery: DeliveryService
) -> None:
    async def refuse(header: bytes) -> bytes:
        assert header.endswith(b"\r\n\r\n") and b"Subject: parts" in header
        raise Rejected("no", status="5.7.1")

    rcpt = await delivery.resolve("bob@example.test", relay_allowed=False)
    incoming = delivery.begin(envelope(rcpt), header_filter=refuse)
    for i in range(0, len(MULTIPART), 5):
        await incoming.write(MULTIPART[i : i + 5])
    assert incoming.failed
    with pytest.raises(Rejected):
        await incoming.finish()
    assert await stored(store, "bob@example.test") == []


def test_target_dedup_and_with_protocol() -> None:
    assert with_protocol(extended=True, tls=True, authenticated=True, utf8=False) == "ESMTPSA"
    assert with_protocol(extended=False, tls=False, authenticated=False, utf8=False) == "SMTP"
    assert with_protocol(extended=True, tls=True, authenticated=False, utf8=True) == "UTF8SMTPS"
    assert LocalTarget(1, "a@b", "a@b") == LocalTarget(1, "a@b", "a@b")


def _blob_files(tmp_path: Path) -> list[str]:
    root = tmp_path / "data" / "blobs"
    return [
        os.path.join(d, name)
        for d, _, names in os.walk(root)
        for name in names
        if Path(d).name != "tmp"
    ]


@pytest.mark.parametrize("big", [False, True])
async def test_failed_fsync_gives_temp_failure_and_no_rows(
    store: Store,
    delivery: DeliveryService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    big: bool,
) -> None:
    """A disk error while the spool is synced (small or large message) is a 451-class
    TempFailure, and neither a row nor a file is left behind."""
    rcpt = await delivery.resolve("bob@example.test", relay_allowed=False)
    incoming = delivery.begin(envelope(rcpt))
    await incoming.write(MULTIPART + (b"x" * 998 + b"\r\n") * (1500 if big else 1))

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(TempFailure):
        await incoming.finish()
    monkeypatch.undo()
    assert await stored(store, "bob@example.test") == []
    assert os.listdir(tmp_path / "data" / "blobs" / "tmp") == []
    assert _blob_files(tmp_path) == []


async def test_inbox_gone_during_delivery_is_temp_failure_and_leaves_no_file(
    store: Store, delivery: DeliveryService, tmp_path: Path
) -> None:
    """An account removed between RCPT and the end of DATA: its INBOX lookup fails the
    delivery with a TempFailure; the finished (synced) spool file is discarded, not left
    behind."""
    rcpt = await delivery.resolve("bob@example.test", relay_allowed=False)
    incoming = delivery.begin(envelope(rcpt))
    await incoming.write(MULTIPART)
    await store.remove_account("bob@example.test")
    with pytest.raises(TempFailure):
        await incoming.finish()
    assert os.listdir(tmp_path / "data" / "blobs" / "tmp") == []
    assert _blob_files(tmp_path) == []


async def test_local_and_remote_are_stored_together_or_not_at_all(
    store: Store, delivery: DeliveryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message for a local mailbox and a remote address is stored in one store call
    (`deliver_and_enqueue`, one transaction): a local copy over quota fails the whole
    message (the client retries it), so no remote recipient is queued without the
    local one; within quota both are stored, and a message received over SMTP for a
    remote address is queued as FORWARD."""
    calls: list[str] = []
    for name in ("deliver", "enqueue", "deliver_and_enqueue"):
        real = getattr(store, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    await store.set_quota("bob@example.test", 100)
    rcpts = [
        await delivery.resolve(a, relay_allowed=True)
        for a in ("bob@example.test", "far@remote.test")
    ]
    incoming = delivery.begin(envelope(*rcpts))
    await incoming.write(MULTIPART)
    with pytest.raises(OverQuota):
        await incoming.finish()
    assert await store.list_queue() == []
    assert await stored(store, "bob@example.test") == []

    await store.set_quota("bob@example.test", 0)
    incoming = delivery.begin(envelope(*rcpts))
    await incoming.write(MULTIPART)
    result = await incoming.finish()
    [queued] = await store.list_queue()
    assert result.queue_id == queued.id and len(result.delivered) == 1
    assert queued.origin is QueueOrigin.FORWARD
    assert len(await stored(store, "bob@example.test")) == 1
    assert calls == ["deliver_and_enqueue", "deliver_and_enqueue"]
