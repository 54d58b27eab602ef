"""Fetching over POP3 from another Pillarbox: keep and delete, no duplicates."""

from __future__ import annotations

from pillarbox.fetcher.runner import FetcherSettings, SourceRunner
from pillarbox.model.fetch import FetchProtocol
from pillarbox.services.fetch_delivery import FetchDelivery
from tests.e2e.conftest import RunningServer
from tests.fetcher.conftest import BOB, Local, message, put, remote_subjects
from tests.fetcher.fake import FakeServer


async def test_keep_fetches_each_message_once(provider: RunningServer, local: Local) -> None:
    """With "leave on server", repeated runs fetch only what is new (by UIDL, RFC 1939
    §7); each copy carries Delivered-To and a Received line naming the source."""
    for n in (1, 2):
        put(provider, message(n))
    source = await local.add(provider, "pop3")
    assert source.protocol is FetchProtocol.POP3
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 2)
    assert await local.subjects() == ["message 1", "message 2"]
    assert (await local.run(source)).fetched == 0
    put(provider, message(3))
    assert (await local.run(source)).fetched == 1
    assert (await local.run(source)).fetched == 0
    assert await local.subjects() == ["message 1", "message 2", "message 3"]
    assert remote_subjects(provider) == ["message 1", "message 2", "message 3"]
    first = (await local.messages())[0]
    head = first.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith(f"Delivered-To: {BOB}\r\nReceived: from 127.0.0.1 ([127.0.0.1])")
    assert "by mail.local.test (Pillarbox) with POP3 id" in head
    assert f"for <{BOB}>;" in head
    assert b"\r\n.a dotted line of message" in first  # dot-unstuffed once, not twice
    shown = await local.store.get_fetch_source(source.id)
    assert shown is not None and shown.last_result == "0 new" and shown.last_error == ""


async def test_delete_removes_the_remote_copy_after_storing(
    provider: RunningServer, local: Local
) -> None:
    """With "delete", what was stored is deleted at the provider (at QUIT, RFC 1939 §6),
    and nothing is fetched twice."""
    for n in (1, 2, 3):
        put(provider, message(n))
    source = await local.add(provider, "pop3", policy="delete")
    report = await local.run(source)
    assert (report.error, report.fetched, report.deleted) == ("", 3, 3)
    assert remote_subjects(provider) == []
    put(provider, message(4))
    assert (await local.run(source)).fetched == 1
    assert (await local.run(source)).fetched == 0
    assert await local.subjects() == ["message 1", "message 2", "message 3", "message 4"]
    assert remote_subjects(provider) == []
    assert await local.store.fetched(source.id, "") == []  # records go with the remote copy


async def test_delete_after_days_keeps_recent_copies(provider: RunningServer, local: Local) -> None:
    """delete-after:N leaves a copy fetched less than N days ago on the server."""
    put(provider, message(1))
    source = await local.add(provider, "pop3", policy="delete-after:3")
    assert (await local.run(source)).fetched == 1
    assert (await local.run(source)).deleted == 0
    assert remote_subjects(provider) == ["message 1"]


async def test_a_message_over_the_size_bound_stays_on_the_server(
    provider: RunningServer, local: Local
) -> None:
    """A message larger than [fetcher] max_message_size is neither fetched nor deleted,
    and the result says so; the others are fetched."""
    put(provider, message(1))
    put(provider, message(2, extra="X-Padding: " + "x" * 5000 + "\r\n"))
    bounded = SourceRunner(
        local.sources,
        FetchDelivery(local.store, hostname="mail.local.test"),
        FetcherSettings(allow_private=True, max_message_size=2000, timeout=20),
    )
    source = await local.add(provider, "pop3", policy="delete")
    report = await bounded.run(source)
    assert (report.error, report.fetched, report.too_large) == ("", 1, 1)
    assert "1 too large (left on the server)" in report.summary()
    assert remote_subjects(provider) == ["message 2"]
    assert (await bounded.run(source)).fetched == 0
    assert await local.subjects() == ["message 1"]


async def test_a_server_without_uidl_falls_back_to_a_header_hash(
    provider: RunningServer, local: Local, fake: list[FakeServer]
) -> None:
    """Without UIDL (optional, RFC 1939 §7) messages are told apart by a hash of their
    headers (TOP n 0), with a warning in the result: the second run fetches nothing."""
    one, two = message(1), message(2)

    def session(*retrieved: bytes) -> list[bytes]:
        script = [b"+OK hi\r\n", b"<", b"+OK\r\n", b"<", b"+OK\r\n"]  # USER, PASS
        script += [b"<", b"-ERR no UIDL here\r\n"]
        script += [b"<", b"+OK\r\n1 %d\r\n2 %d\r\n.\r\n" % (len(one), len(two))]  # LIST
        for data in (one, two):
            top = data.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            script += [b"<", b"+OK\r\n" + top.replace(b"\r\n.", b"\r\n..") + b".\r\n"]
            if data in retrieved:
                stuffed = data.replace(b"\r\n.", b"\r\n..")
                script += [b"<", b"+OK\r\n" + stuffed + b".\r\n"]
        return [*script, b"<", b"+OK bye\r\n"]

    server = FakeServer(session(one, two), session())
    fake.append(server)
    source = await local.add(provider, "pop3", port=server.port)
    report = await local.run(source)
    assert (report.error, report.fetched) == ("", 2)
    assert "the server has no UIDL" in report.summary()
    again = await local.run(source)
    assert (again.error, again.fetched) == ("", 0)
    assert await local.subjects() == ["message 1", "message 2"]
    assert [c.split()[0] for c in server.received if c.startswith(b"RETR")] == [b"RETR"] * 2


async def test_over_quota_stops_without_losing_anything(
    provider: RunningServer, local: Local
) -> None:
    """Local delivery's quota applies: the message that does not fit is neither stored
    nor recorded nor deleted remotely (with "delete"), what fitted is; once there is
    room, the next run fetches the rest."""
    for n in (1, 2):
        put(provider, message(n))
    await local.store.set_quota(BOB, None, 1)  # room for one message
    source = await local.add(provider, "pop3", policy="delete")
    report = await local.run(source)
    assert report.fetched == 1 and "over quota" in report.error
    assert remote_subjects(provider) == ["message 2"]
    assert len(await local.store.fetched(source.id, "")) == 0  # deleted, so forgotten
    await local.store.set_quota(BOB, None, 0)
    again = await local.run(source)
    assert (again.error, again.fetched) == ("", 1)
    assert await local.subjects() == ["message 1", "message 2"]
    assert remote_subjects(provider) == []


async def test_a_deletion_cut_short_is_redone_without_fetching_again(
    provider: RunningServer, local: Local, fake: list[FakeServer]
) -> None:
    """The connection drops at QUIT, so the server never deleted (RFC 1939 §6): the copy
    here and its record stay, and the next run deletes the message without fetching it
    a second time."""
    data = message(1)
    login = [b"+OK hi\r\n", b"<", b"+OK\r\n", b"<", b"+OK\r\n"]
    listing = [b"<", b"+OK\r\n1 uid-a\r\n.\r\n", b"<", b"+OK\r\n1 %d\r\n.\r\n" % len(data)]
    retr = [b"<", b"+OK\r\n" + data.replace(b"\r\n.", b"\r\n..") + b".\r\n"]
    first = [*login, *listing, *retr, b"<", b"+OK deleted\r\n", b"<"]  # QUIT: no answer
    second = [*login, *listing, b"<", b"+OK deleted\r\n", b"<", b"+OK bye\r\n"]
    server = FakeServer(first, second)
    fake.append(server)
    source = await local.add(provider, "pop3", port=server.port, policy="delete")
    report = await local.run(source)
    assert report.fetched == 1 and "closed the connection" in report.error
    assert [e.remote_id for e in await local.store.fetched(source.id, "")] == ["uid-a"]
    again = await local.run(source)
    assert (again.error, again.fetched, again.deleted) == ("", 0, 1)
    assert await local.store.fetched(source.id, "") == []
    assert await local.subjects() == ["message 1"]
    commands = [line.split()[0] for line in server.received]
    assert commands.count(b"RETR") == 1 and commands.count(b"DELE") == 2
