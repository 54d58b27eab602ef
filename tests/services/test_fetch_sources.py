"""Fetch sources on a real SQLite store: the rules of a source, and its password kept
encrypted under a key outside the database."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.model.fetch import FetchProtocol, FetchSecurity, RemoteAction, RemotePolicy
from pillarbox.services.errors import AccountError
from pillarbox.services.fetch_delivery import canonical_lines, header_digest
from pillarbox.services.fetch_sources import (
    FetchSourceService,
    SecretBox,
    SourceRequest,
    parse_policy,
)
from pillarbox.store.sqlite import SqliteStore

ADDRESS = "alice@example.test"
SECRET = "pässword with spaces"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data")
    await s.open()
    await s.add_domain("example.test")
    await s.add_account(ADDRESS, "$argon2id$dummy")
    try:
        yield s
    finally:
        await s.close()


def request(**changes: object) -> SourceRequest:
    values: dict[str, object] = {
        "protocol": "IMAP",
        "host": "Mail.Example.NET",
        "port": None,
        "security": "tls",
        "username": "me",
        "password": SECRET,
    }
    values.update(changes)
    return SourceRequest(**values)  # type: ignore[arg-type]


async def test_password_is_sealed_with_a_key_outside_the_database(
    store: SqliteStore, tmp_path: Path
) -> None:
    """The stored secret is not the password and opens only with the key file, which is
    made 0600 on first use and refused once others may read it."""
    key = tmp_path / "keys" / "fetch.key"
    key.parent.mkdir()
    service = FetchSourceService(store, SecretBox(key))
    source = await service.add(ADDRESS, request())
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert SECRET.encode() not in source.password_secret
    assert service.password_of(source) == SECRET
    assert SecretBox(key).open(source.password_secret) == SECRET  # a new process, same key
    other = tmp_path / "keys" / "other.key"
    with pytest.raises(AccountError, match="cannot be decrypted"):
        SecretBox(other).open(source.password_secret)
    os.chmod(key, 0o644)
    with pytest.raises(AccountError, match="chmod 600"):
        SecretBox(key).open(source.password_secret)


async def test_rules_of_a_source(store: SqliteStore, tmp_path: Path) -> None:
    """Defaults by protocol and security (RFC 8314 §7.3 ports), a canonical host, a new
    target folder made; refused: POP3 with folders, a short interval, a bad policy, a
    line break in the password, an unknown account."""
    service = FetchSourceService(store, SecretBox(tmp_path / "k"))
    source = await service.add(ADDRESS, request(target_folder="Elsewhere/Old"))
    assert (source.protocol, source.security, source.port) == (
        FetchProtocol.IMAP,
        FetchSecurity.TLS,
        993,
    )
    assert source.host == "mail.example.net" and source.interval == 300
    account = await service.account(ADDRESS)
    assert await store.get_mailbox(account.id, "Elsewhere/Old") is not None
    pop = await service.add(ADDRESS, request(protocol="pop3", security="starttls", host="[::1]"))
    assert (pop.port, pop.host) == (110, "::1")
    for bad, words in (
        (request(protocol="pop3", source_folders=["X"]), "POP3 has no folders"),
        (request(interval=10), "at least 60"),
        (request(policy="delete-after:x"), "not a remote policy"),
        (request(password="a\r\nb"), "line break"),
        (request(host="bad host!"), "not a host name"),
        (request(security="ssl"), "security"),
    ):
        with pytest.raises(AccountError, match=words):
            await service.add(ADDRESS, bad)
    with pytest.raises(AccountError, match="no account"):
        await service.add("nobody@example.test", request())
    assert [s.id for s in await service.list(ADDRESS)] == [source.id, pop.id]
    await service.remove(ADDRESS, pop.id)
    with pytest.raises(AccountError, match="no fetch source"):
        await service.get(ADDRESS, pop.id)


def test_policies_and_digests() -> None:
    """Policies parse to their values; the header digest ignores line-end style and the
    body; stored messages end in CRLF."""
    assert parse_policy("Keep") == RemotePolicy()
    assert parse_policy("delete-after:14") == RemotePolicy(RemoteAction.DELETE_AFTER, 14)
    assert str(parse_policy("delete-after:14")) == "delete-after:14"
    a = b"Message-ID: <1@x>\r\nSubject: s\r\n\r\nbody one\r\n"
    b = b"Message-ID: <1@x>\nSubject: s\n\nbody two\n"
    assert header_digest(a) == header_digest(b)
    assert header_digest(a) != header_digest(a.replace(b"<1@x>", b"<2@x>"))
    assert canonical_lines(b"a\nb") == b"a\r\nb\r\n"
