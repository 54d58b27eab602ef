"""Debian's Dovecot as a real third-party provider: POP3 (leave and delete) and IMAP (two
folders, IDLE), no duplicates over repeated runs. Dovecot is the benchmark's private instance
(`bench.reference.ReferenceServers`: loopback ports, its own directory, mail delivered
over its LMTP), which installs the Debian packages when they are missing."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import time
from collections.abc import Iterator

import pytest
from bench.reference import ReferenceServers
from bench.servers import PASSWORD as DOVECOT_PASSWORD
from bench.servers import Endpoint, user_address

from pillarbox.services.fetch_sources import SourceRequest
from tests.e2e.conftest import RunningServer
from tests.e2e.mtas import wait_until
from tests.fetcher.conftest import BOB, Local, message
from tests.fetcher.test_fetch_scheduler import here, inbox_count

__all__ = ["here"]

USERS = 5  # one per test: the server is shared by the module
# One worker runs the whole module (pytest -n with --dist loadgroup): Dovecot starts once.
pytestmark = pytest.mark.xdist_group("fetch_dovecot")


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Endpoint]:
    servers = ReferenceServers(
        lambda _line: None, user_count=USERS, password_scheme="plain", connection_limit=20
    )
    try:
        yield servers.start()
    finally:
        servers.stop()


def deliver(endpoint: Endpoint, user: str, *numbers: int) -> None:
    """Messages into `user`'s INBOX at Dovecot, over its LMTP (RFC 2033)."""
    assert endpoint.lmtp_port is not None
    with smtplib.LMTP(endpoint.host, endpoint.lmtp_port, timeout=30) as lmtp:
        for n in numbers:
            refused = lmtp.sendmail("carol@other.test", [user], message(n, to=user))
            assert refused == {}


def dovecot_imap(endpoint: Endpoint, user: str) -> imaplib.IMAP4:
    assert endpoint.imap_port is not None
    imap = imaplib.IMAP4(endpoint.host, endpoint.imap_port)
    imap.login(user, DOVECOT_PASSWORD)
    return imap


def remote_count(endpoint: Endpoint, user: str) -> int:
    assert endpoint.pop3_port is not None
    pop = poplib.POP3(endpoint.host, endpoint.pop3_port, timeout=30)
    try:
        pop.user(user)
        pop.pass_(DOVECOT_PASSWORD)
        return pop.stat()[0]
    finally:
        pop.quit()


async def add(local: Local, endpoint: Endpoint, protocol: str, user: str, **more: object) -> int:
    port = endpoint.pop3_port if protocol == "pop3" else endpoint.imap_port
    request = SourceRequest(
        protocol,
        endpoint.host,
        port,
        "none",
        user,
        DOVECOT_PASSWORD,
        **more,  # type: ignore[arg-type]
    )
    return (await local.sources.add(BOB, request)).id


async def run(local: Local, source_id: int) -> tuple[str, int, int]:
    source = await local.store.get_fetch_source(source_id)
    report = await local.runner.run(source)
    return report.error, report.fetched, report.deleted


async def test_pop3_leave_on_server(dovecot: Endpoint, local: Local) -> None:
    """Dovecot's UIDLs (RFC 1939 §7) keep repeated runs from fetching anything twice."""
    user = user_address(0)
    deliver(dovecot, user, 1, 2, 3)
    source = await add(local, dovecot, "pop3", user)
    assert await run(local, source) == ("", 3, 0)
    assert await run(local, source) == ("", 0, 0)
    deliver(dovecot, user, 4)
    assert await run(local, source) == ("", 1, 0)
    assert await run(local, source) == ("", 0, 0)
    assert await local.subjects() == [f"message {n}" for n in (1, 2, 3, 4)]
    assert remote_count(dovecot, user) == 4


async def test_pop3_delete(dovecot: Endpoint, local: Local) -> None:
    """What was stored here is deleted at Dovecot (at QUIT, RFC 1939 §6), once."""
    user = user_address(1)
    deliver(dovecot, user, 1, 2)
    source = await add(local, dovecot, "pop3", user, policy="delete")
    assert await run(local, source) == ("", 2, 2)
    assert remote_count(dovecot, user) == 0
    deliver(dovecot, user, 3)
    assert await run(local, source) == ("", 1, 1)
    assert await run(local, source) == ("", 0, 0)
    assert await local.subjects() == ["message 1", "message 2", "message 3"]


async def test_imap_two_folders(dovecot: Endpoint, local: Local) -> None:
    """INBOX and a second folder at Dovecot, into one folder here; only UIDs above the
    last one fetched are taken (RFC 9051 §2.3.1.1), so repeated runs add nothing, and
    with "delete" the copies go from Dovecot too (UID EXPUNGE, RFC 4315 §2.1)."""
    user = user_address(2)
    deliver(dovecot, user, 1)
    imap = dovecot_imap(dovecot, user)
    try:
        assert imap.create("Lists")[0] == "OK"
        assert imap.append("Lists", "", None, message(2, to=user))[0] == "OK"
    finally:
        imap.logout()
    source = await add(
        local, dovecot, "imap", user, source_folders=["INBOX", "Lists"], target_folder="Away"
    )
    fresh = await local.store.get_fetch_source(source)
    report = await local.runner.run(fresh)
    assert (report.error, report.fetched, report.idle) == ("", 2, True)
    assert await run(local, source) == ("", 0, 0)
    deliver(dovecot, user, 3)
    assert await run(local, source) == ("", 1, 0)
    assert await run(local, source) == ("", 0, 0)
    assert await local.subjects("Away") == ["message 1", "message 2", "message 3"]
    delete = await add(local, dovecot, "imap", user, policy="delete", target_folder="Again")
    assert await run(local, delete) == ("", 2, 2)  # INBOX: messages 1 and 3
    assert await run(local, delete) == ("", 0, 0)
    assert await local.subjects("Again") == ["message 1", "message 3"]
    imap = dovecot_imap(dovecot, user)
    try:
        typ, count = imap.select("INBOX", readonly=True)
        assert (typ, count) == ("OK", [b"0"])
    finally:
        imap.logout()


async def test_imap_condstore(dovecot: Endpoint, local: Local) -> None:
    """Dovecot offers CONDSTORE: \\Seen set and \\Flagged set there reach the copy here
    (RFC 7162 §3.1.4.1), once."""
    user = user_address(3)
    deliver(dovecot, user, 1)
    source = await add(local, dovecot, "imap", user)
    assert await run(local, source) == ("", 1, 0)
    imap = dovecot_imap(dovecot, user)
    try:
        imap.select("INBOX")
        assert imap.store("1", "+FLAGS", "(\\Seen \\Flagged)")[0] == "OK"
    finally:
        imap.logout()
    fresh = await local.store.get_fetch_source(source)
    report = await local.runner.run(fresh)
    assert (report.error, report.fetched, report.flags_changed) == ("", 0, 1)
    box = await local.store.get_mailbox(local.account.id, "INBOX")
    rows = await local.store.fetch_flags(box.id, await local.store.uids(box.id))
    assert [r.flags for r in rows] == [frozenset({"\\Seen", "\\Flagged"})]
    fresh = await local.store.get_fetch_source(source)
    assert (await local.runner.run(fresh)).flags_changed == 0


def test_imap_idle_brings_mail_in_seconds(dovecot: Endpoint, here: RunningServer) -> None:
    """Dovecot offers IDLE: the scheduler of a running Pillarbox watches the source, and
    a message delivered there arrives here within 5 seconds, with a 300 s interval (so no
    poll could have brought it)."""
    user = user_address(4)
    assert dovecot.imap_port is not None
    deliver(dovecot, user, 1)
    scheduler = here.app.fetch_scheduler
    request = SourceRequest(
        "imap", dovecot.host, dovecot.imap_port, "none", user, DOVECOT_PASSWORD, interval=300
    )
    source = here.call(lambda: here.services.fetch_sources.add("bob@example.test", request))
    here.loop.call_soon_threadsafe(scheduler.wake)
    wait_until(lambda: source.id in scheduler.idling, "the source watched with IDLE", 10)
    wait_until(lambda: inbox_count(here) == 1, "the first message fetched", 10)
    deliver(dovecot, user, 2)
    sent = time.monotonic()
    wait_until(lambda: inbox_count(here) == 2, "the second message, pushed", 5)
    print(f"Dovecot IDLE → here: {time.monotonic() - sent:.2f} s")
    fetched = here.call(lambda: here.store.get_fetch_source(source.id))
    assert fetched.last_error == "" and fetched.failures == 0
