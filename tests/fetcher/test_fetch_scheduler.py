"""The scheduler: intervals with back-off, the bound on runs at once, pausing after three
authentication failures, and IDLE inside a running `pillarbox serve`."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from pillarbox.fetcher.idle import Events, IdleWatcher
from pillarbox.fetcher.scheduler import FetchScheduler, ScheduleSettings, next_delay
from pillarbox.model.fetch import FetchProtocol, FetchSecurity, FetchSource, RemotePolicy
from pillarbox.services.fetch_sources import SourceRequest
from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision
from tests.e2e.mtas import wait_until
from tests.fetcher.conftest import ALICE, BOB, Local, message, put
from tests.fetcher.fake import FakeServer


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def scheduler(local: Local, clock: Clock, **settings: int) -> FetchScheduler:
    return FetchScheduler(
        local.sources,
        local.runner,
        ScheduleSettings(**settings),  # type: ignore[arg-type]
        holder="node-a",
        clock=clock,
        rng=random.Random(7),
    )


async def current(local: Local, source: FetchSource) -> FetchSource:
    fresh = await local.store.get_fetch_source(source.id)
    assert fresh is not None
    return fresh


async def test_back_off_then_pause_after_three_authentication_failures(
    provider: RunningServer, local: Local
) -> None:
    """A wrong password: each failed run doubles the wait (interval 60 s: about 120 s,
    then 240 s), the third failure in a row pauses the source, which is then never run
    however late it gets, until it is resumed."""
    source = await local.add(provider, "pop3", password="wrong", interval=60)
    clock = Clock()
    sched = scheduler(local, clock)
    waits = []
    for _ in range(3):
        wait = await sched.tick()
        while not sched.running:  # not due yet: jump ahead (a tick waits rescan at most)
            assert 0 < wait <= sched.settings.rescan
            clock.now += wait + 0.001
            wait = await sched.tick()
        last = (await current(local, source)).last_run_at
        if last is not None:  # from the end of the last run to the start of this one
            waits.append(clock.now - last.timestamp())
        assert sched.running == {source.id}
        await sched.settle()
    assert 108 <= waits[0] <= 133 and 216 <= waits[1] <= 265, waits
    after = await current(local, source)
    assert after.paused and after.auth_failures == 3 and after.failures == 3
    assert "authentication failed" in after.last_error
    clock.now += 10 * 86400
    await sched.tick()
    assert sched.running == frozenset()
    assert (await current(local, source)).last_run_at == after.last_run_at
    resumed = await local.sources.resume(BOB, source.id)
    assert not resumed.paused and resumed.failures == 0
    await sched.tick()
    assert sched.running == {source.id}
    await sched.settle()
    assert (await current(local, source)).auth_failures == 1


async def test_at_most_max_concurrent_runs(provider: RunningServer, local: Local) -> None:
    """Five sources due at once and max_concurrent 2: two run, then the next two, then
    the last; each source's messages arrive once."""
    put(provider, message(1))
    sources = [await local.add(provider, "imap") for _ in range(5)]
    sched = scheduler(local, Clock(), max_concurrent=2)
    batches = []
    while True:
        await sched.tick()
        if not sched.running:
            break
        batches.append(len(sched.running))
        await sched.settle()
    assert batches == [2, 2, 1]
    for source in sources:
        assert (await current(local, source)).last_result == "1 new"
    assert await local.subjects() == ["message 1"] * 5


def test_delay_is_the_interval_with_jitter_and_capped_back_off() -> None:
    """±10% around the interval; after failures, doubling up to retry_max (±10%)."""
    source = FetchSource(
        id=1,
        account_id=1,
        protocol=FetchProtocol.POP3,
        host="h",
        port=110,
        security=FetchSecurity.NONE,
        username="u",
        password_secret=b"",
        target_folder="INBOX",
        source_folders=(),
        policy=RemotePolicy(),
        interval=300,
        created_at=datetime.now(UTC),
    )
    settings = ScheduleSettings(retry_max=3600)
    rng = random.Random(1)
    plain = [next_delay(source, settings, rng) for _ in range(200)]
    assert 270 <= min(plain) < 285 and 315 < max(plain) <= 330
    once = dataclasses.replace(source, failures=1)
    assert all(540 <= next_delay(once, settings, rng) <= 660 for _ in range(50))
    often = dataclasses.replace(source, failures=40)
    assert all(3240 <= next_delay(often, settings, rng) <= 3960 for _ in range(50))


# --- inside `pillarbox serve` ------------------------------------------------------------


@pytest.fixture
def here(tmp_path: Path) -> Iterator[RunningServer]:
    """The local Pillarbox (bob@example.test here fetches alice@example.test there)."""
    server = RunningServer(
        make_config(tmp_path / "here", fetcher={"allow_private_networks": True, "timeout": 20.0})
    )
    server.start()
    try:
        provision(server)
        yield server
    finally:
        server.stop()


def idle_session(server: RunningServer) -> tuple[socket.socket, BinaryIO]:
    """bob's IMAP session on `server`, INBOX selected and in IDLE."""
    sock = socket.create_connection(("127.0.0.1", server.port("imap")), timeout=10)
    reader = sock.makefile("rb")
    reader.readline()
    for command in (
        f'a LOGIN bob@example.test "{PASSWORD}"',
        "b SELECT INBOX",
    ):
        sock.sendall(command.encode() + b"\r\n")
        while not reader.readline().startswith(command[:2].encode()):
            pass
    sock.sendall(b"c IDLE\r\n")
    assert reader.readline().startswith(b"+")
    return sock, reader


def test_idle_brings_mail_in_seconds(provider: RunningServer, here: RunningServer) -> None:
    """An IMAP source on a server with IDLE is watched: a message delivered there over
    SMTP shows up in bob's INBOX here within 5 seconds — as an EXISTS in his own IDLE
    session, through the server's change bus — with the interval at 300 s, so no poll
    could have brought it."""
    put(provider, message(1))
    scheduler = here.app.fetch_scheduler
    request = SourceRequest(
        "imap", "127.0.0.1", provider.port("imap"), "none", ALICE, PASSWORD, interval=300
    )
    source = here.call(lambda: here.services.fetch_sources.add("bob@example.test", request))
    here.loop.call_soon_threadsafe(scheduler.wake)
    wait_until(lambda: source.id in scheduler.idling, "the source watched with IDLE", 10)
    wait_until(lambda: inbox_count(here) == 1, "the first message fetched", 10)
    session, reader = idle_session(here)
    try:
        with smtplib.SMTP("127.0.0.1", provider.port("smtp"), "client.test", timeout=30) as s:
            s.sendmail("carol@other.test", [ALICE], message(2))
        sent = time.monotonic()
        session.settimeout(5.0)
        while not reader.readline().startswith(b"* 2 EXISTS"):  # socket.timeout fails it
            pass
        assert time.monotonic() - sent < 5.0
    finally:
        session.close()
    fetched = here.call(lambda: here.store.get_fetch_source(source.id))
    assert fetched.last_error == "" and fetched.failures == 0


def inbox_count(server: RunningServer) -> int:
    async def count() -> int:
        account = await server.store.get_account("bob@example.test")
        box = await server.store.get_mailbox(account.id, "INBOX")
        return len(await server.store.uids(box.id))

    return server.call(count)


async def test_a_lost_idle_connection_is_made_again(
    provider: RunningServer, local: Local, fake: list[FakeServer]
) -> None:
    """The server drops the watcher's connection in IDLE: the watcher connects again
    (after its back-off), selects, IDLEs, and passes the EXISTS it then gets on."""
    greeting = b"* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n"
    setup = [
        *(b"<", b"* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n"),
        *(b"<", b"{tag} OK [CAPABILITY IMAP4rev1 IDLE] in\r\n"),
        *(b"<", b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] u\r\n{tag} OK [READ-ONLY] done\r\n"),
        *(b"<", b"+ idling\r\n"),
    ]
    server = FakeServer([greeting, *setup], [greeting, *setup, b"* 1 EXISTS\r\n"])
    fake.append(server)
    source = await local.add(provider, "imap", port=server.port)
    ready, changed = threading.Semaphore(0), threading.Event()
    watcher = IdleWatcher(
        source.id,
        "INBOX",
        lambda: local.runner.connect_imap(source, PASSWORD),
        Events(ready=ready.release, changed=changed.set, ended=lambda why: None),
        retry_initial=0.05,
        retry_max=0.1,
    )
    watcher.start()
    try:
        assert await asyncio.to_thread(changed.wait, 10), server.received  # what it said
        assert ready.acquire(timeout=1) and ready.acquire(timeout=1)  # two connections
    finally:
        watcher.stop()
        await asyncio.to_thread(watcher.join, 30)
    assert [line.split(b" ", 1)[1] for line in server.received if b"IDLE" in line] == [
        b"IDLE\r\n",
        b"IDLE\r\n",
    ]
