"""A safe client: wrong passwords reported per source, private addresses refused unless
allowed, certificates verified, and STARTTLS that cannot be had is never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from pillarbox.fetcher.runner import FetcherSettings, SourceRunner
from pillarbox.services.fetch_delivery import FetchDelivery
from tests.e2e.conftest import RunningServer
from tests.fetcher.conftest import Local, message, put
from tests.fetcher.fake import CAPABILITY, FakeServer


def runner(local: Local, **settings: object) -> SourceRunner:
    values: dict[str, object] = {"allow_private": True, "timeout": 20.0}
    values.update(settings)
    delivery = FetchDelivery(local.store, hostname="mail.local.test")
    return SourceRunner(local.sources, delivery, FetcherSettings(**values))  # type: ignore[arg-type]


def ca_file(server: RunningServer) -> str:
    return str(server.config.data_path / "tls" / "selfsigned.crt")


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
async def test_wrong_password_is_kept_on_the_source(
    provider: RunningServer, local: Local, protocol: str
) -> None:
    """A refused login is a clear error on the source, with its time, counted as an
    authentication failure in a row; a later good run clears it."""
    put(provider, message(1))
    source = await local.add(provider, protocol, password="not the password")
    report = await local.run(source)
    assert report.auth_failure and "authentication failed" in report.error
    await local.run(source)
    shown = await local.store.get_fetch_source(source.id)
    assert shown is not None
    assert "authentication failed (wrong user name or password)" in shown.last_error
    assert shown.last_error_at is not None and shown.auth_failures == 2
    assert await local.subjects() == []


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
async def test_loopback_is_refused_without_permission(
    provider: RunningServer, local: Local, protocol: str
) -> None:
    """Without [fetcher] allow_private_networks, a source on 127.0.0.1 (or a name that
    resolves there) is refused before anything is read or sent."""
    put(provider, message(1))
    strict = runner(local, allow_private=False)
    for host in ("127.0.0.1", "localhost"):
        source = await local.add(provider, protocol, host=host)
        report = await strict.run(source)
        assert "a loopback, private or link-local address: refused" in report.error
        assert "allow_private_networks" in report.error and not report.auth_failure
        shown = await local.store.get_fetch_source(source.id)
        assert shown is not None and "refused" in shown.last_error
    assert await local.subjects() == []


@pytest.mark.parametrize(
    ("protocol", "listener", "security"),
    [
        ("pop3", "pop3s", "tls"),
        ("pop3", "pop3", "starttls"),
        ("imap", "imaps", "tls"),
        ("imap", "imap", "starttls"),
    ],
)
async def test_tls_is_verified(
    provider: RunningServer, local: Local, protocol: str, listener: str, security: str
) -> None:
    """Implicit TLS and STARTTLS work with the provider's certificate trusted (its
    cipher shows in the Received line), and fail without it: an untrusted certificate
    is an error, never a reason to go on without TLS."""
    put(provider, message(1))
    source = await local.add(provider, protocol, port=provider.port(listener), security=security)
    untrusted = await runner(local).run(source)
    assert "certificate not trusted" in untrusted.error and untrusted.fetched == 0
    trusted = await runner(local, ca_file=ca_file(provider)).run(source)
    assert (trusted.error, trusted.fetched) == ("", 1)
    head = (await local.messages())[0].split(b"\r\n\r\n", 1)[0]
    assert b"(TLSv1." in head


async def test_starttls_downgrades_are_refused(
    provider: RunningServer, local: Local, fake: list[FakeServer], tmp_path: Path
) -> None:
    """A POP3 server that pipelines plaintext behind its STLS +OK, an IMAP server that
    greets with PREAUTH on a STARTTLS source, and one that does not offer STARTTLS are
    all refused (RFC 2595 §4, RFC 9051 §6.2.1), and no password is sent."""
    cases = [
        ("pop3", [b"+OK hi\r\n", b"<", b"+OK begin TLS\r\n+OK injected\r\n"], "before the TLS"),
        ("imap", [b"* PREAUTH hi\r\n", b"<", CAPABILITY], "PREAUTH"),
        ("imap", [b"* OK hi\r\n", b"<", CAPABILITY.replace(b" STARTTLS", b"")], "offer STARTTLS"),
    ]
    for protocol, script, expected in cases:
        server = FakeServer(script)
        fake.append(server)
        source = await local.add(
            provider, protocol, port=server.port, security="starttls", password="secret pw"
        )
        report = await runner(local).run(source)
        assert expected in report.error, report.error
        server.close()
        assert not any(b"secret pw" in line for line in server.received)


async def test_a_connection_dropped_mid_message_stores_nothing(
    provider: RunningServer, local: Local, fake: list[FakeServer]
) -> None:
    """A POP3 server that drops the connection in the middle of RETR: the run fails with
    a clear error, and neither a partial message nor a record of it is kept."""
    script = [b"+OK hi\r\n"] + [b"<", b"+OK\r\n"] * 2  # USER, PASS
    script += [b"<", b"+OK\r\n1 uid-1\r\n.\r\n", b"<", b"+OK\r\n1 500\r\n.\r\n"]  # UIDL, LIST
    script += [b"<", b"+OK\r\nSubject: cut\r\n\r\nthe first line\r\n"]  # RETR, then EOF
    server = FakeServer(script)
    fake.append(server)
    source = await local.add(provider, "pop3", port=server.port)
    report = await runner(local).run(source)
    assert "closed the connection" in report.error and report.fetched == 0
    assert await local.messages() == []
    assert await local.store.fetched(source.id, "") == []


async def test_lines_and_literals_are_bounded(
    provider: RunningServer, local: Local, fake: list[FakeServer]
) -> None:
    """An endless POP3 line and an IMAP literal larger than the bound (a server that
    announced a small RFC822.SIZE and then sends a huge literal) end the run with an
    error instead of being read into memory."""
    pop = FakeServer([b"+OK " + b"x" * 70_000 + b"\r\n"])
    imap = FakeServer(
        [
            b"* OK hi\r\n",
            *(b"<", b"* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"),
            *(b"<", b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n"),
            *(b"<", b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] u\r\n{tag} OK [READ-ONLY] done\r\n"),
            *(b"<", b"* SEARCH 1\r\n{tag} OK done\r\n"),
            *(b"<", b"* 1 FETCH (UID 1 RFC822.SIZE 10 FLAGS ())\r\n{tag} OK done\r\n"),
            *(b"<", b"* 1 FETCH (UID 1 BODY[] {900000000}\r\nshort"),
        ]
    )
    fake.extend([pop, imap])
    bounded = runner(local, max_message_size=2000)
    source = await local.add(provider, "pop3", port=pop.port)
    assert "a line longer than" in (await bounded.run(source)).error
    source = await local.add(provider, "imap", port=imap.port)
    report = await bounded.run(source)
    assert "a literal of 900000000 octets, over the bound" in report.error, report.error
    assert await local.messages() == []
