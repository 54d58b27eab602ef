"""The user's accounts at other providers: adding, listing and removing fetch sources,
and keeping their passwords.

Owns the rules of a source (a host name or address, a port, a protocol and a security
mode that make sense together, a valid target folder, a remote policy, an interval of at
least `MIN_INTERVAL`) and the password's encryption at rest: Fernet (AES-128-CBC with
HMAC-SHA256, from `cryptography`) under a key kept in a file of its own outside the
database (`KEY_FILE` in the data directory, created 0600 on first use), so that a copy of
the database alone reveals no password. A password is decrypted only to log in
(`password_of`) and never shown back.

Must not: connect anywhere (that is `fetcher/`), or print a password or its ciphertext.
"""

from __future__ import annotations

import builtins
import contextlib
import ipaddress
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from pillarbox.model import Account
from pillarbox.model.fetch import (
    FetchProtocol,
    FetchSecurity,
    FetchSource,
    NewFetchSource,
    RemoteAction,
    RemotePolicy,
)
from pillarbox.rules import addresses
from pillarbox.rules.mailbox_names import BadMailboxName, normalize_mailbox_name
from pillarbox.services.accounts import canonical_address
from pillarbox.services.errors import AccountError
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

KEY_FILE = "fetch-secrets.key"
MIN_INTERVAL = 60  # seconds: a source polled more often is abuse of the other provider
DEFAULT_INTERVAL = 300
DEFAULT_PORTS = {
    (FetchProtocol.POP3, FetchSecurity.TLS): 995,  # implicit TLS ports, RFC 8314 §3
    (FetchProtocol.IMAP, FetchSecurity.TLS): 993,
    (FetchProtocol.POP3, FetchSecurity.STARTTLS): 110,
    (FetchProtocol.IMAP, FetchSecurity.STARTTLS): 143,
    (FetchProtocol.POP3, FetchSecurity.NONE): 110,
    (FetchProtocol.IMAP, FetchSecurity.NONE): 143,
}


class SecretBox:
    """Encrypts fetch passwords with the server key in `path` (made on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._load_or_create())
        return self._fernet

    def _load_or_create(self) -> bytes:
        """The key, made on first use: written 0600 to a temporary name, synced, then
        linked to its name, which fails if another process made it first (we then read
        theirs), so no reader ever sees a half-written key."""
        try:
            return self._read()
        except FileNotFoundError:
            pass
        key = Fernet.generate_key()
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, self.path)
        except FileExistsError:
            return self._read()
        finally:
            temporary.unlink()
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return key

    def _read(self) -> bytes:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AccountError(
                f"{self.path} may be read by others: chmod 600 it (it holds the key"
                " to the fetch passwords)"
            )
        return self.path.read_bytes().strip()

    def seal(self, password: str) -> bytes:
        return self._key().encrypt(password.encode("utf-8"))

    def open(self, secret: bytes) -> str:
        try:
            return self._key().decrypt(secret).decode("utf-8")
        except InvalidToken:
            raise AccountError(
                f"the password of this source cannot be decrypted with {self.path}"
                " (was the key file replaced?): set it again"
            ) from None


def parse_policy(text: str) -> RemotePolicy:
    """'keep', 'delete' or 'delete-after:DAYS' (DAYS >= 1)."""
    value = text.strip().lower()
    if value in (RemoteAction.KEEP.value, RemoteAction.DELETE.value):
        return RemotePolicy(RemoteAction(value))
    action, sep, days = value.partition(":")
    if action == RemoteAction.DELETE_AFTER.value and sep and days.isdigit() and int(days) > 0:
        return RemotePolicy(RemoteAction.DELETE_AFTER, int(days))
    raise AccountError(f"not a remote policy: {text!r} (keep, delete or delete-after:DAYS)")


def normalize_host(host: str) -> str:
    """An IP address as such, or a host name in canonical form (`rules.addresses`)."""
    text = host.strip().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:
        return addresses.normalize_domain(text)
    except addresses.InvalidAddress:
        raise AccountError(f"not a host name or address: {host!r}") from None


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """A source as a user asks for it, before the rules are applied."""

    protocol: str
    host: str
    port: int | None
    security: str
    username: str
    password: str
    policy: str = "keep"
    target_folder: str = "INBOX"
    source_folders: Sequence[str] = ()
    interval: int = DEFAULT_INTERVAL


class FetchSourceService:
    """Fetch sources of accounts, checked by the rules in the module docstring."""

    def __init__(self, store: Store, secrets: SecretBox) -> None:
        self._store = store
        self.secrets = secrets

    async def account(self, address: str) -> Account:
        account = await self._store.get_account(canonical_address(address))
        if account is None:
            raise AccountError(f"no account {address}")
        return account

    async def add(self, address: str, request: SourceRequest) -> FetchSource:
        account = await self.account(address)
        return await self._store.add_fetch_source(await self._checked(account, request))

    async def update(self, address: str, source_id: int, request: SourceRequest) -> FetchSource:
        """Change a source's settings; an empty password keeps the stored one. Editing a
        paused source resumes it (issue 15: paused "until the user edits it")."""
        account = await self.account(address)
        new = await self._checked(account, request, password_required=False)
        try:
            return await self._store.update_fetch_source(source_id, new)
        except store_errors.NotFound:
            raise AccountError(f"{address} has no fetch source {source_id}") from None

    async def _checked(
        self, account: Account, request: SourceRequest, *, password_required: bool = True
    ) -> NewFetchSource:
        """The source the rules allow (see module docstring), its password sealed (an
        empty ciphertext when none was given and none is required)."""
        try:
            protocol = FetchProtocol(request.protocol.lower())
            security = FetchSecurity(request.security.lower())
        except ValueError:
            raise AccountError("protocol: pop3 or imap; security: tls, starttls or none") from None
        port = request.port if request.port is not None else DEFAULT_PORTS[(protocol, security)]
        if not 0 < port <= 65535:
            raise AccountError(f"port {port} is out of range 1-65535")
        if not request.username or any(c in request.username for c in "\r\n\0"):
            raise AccountError("the user name is empty or holds a line break")
        if (password_required and not request.password) or any(
            c in request.password for c in "\r\n\0"
        ):
            raise AccountError("the password is empty or holds a line break")
        if request.interval < MIN_INTERVAL:
            raise AccountError(f"the interval must be at least {MIN_INTERVAL} seconds")
        if protocol is FetchProtocol.POP3 and request.source_folders:
            raise AccountError("POP3 has no folders: --source-folder is for IMAP sources")
        try:
            target = normalize_mailbox_name(request.target_folder)
            # Remote names are Unicode; the fetcher sends them in modified UTF-7.
            folders = tuple(dict.fromkeys(f for f in request.source_folders if f))
        except BadMailboxName as exc:
            raise AccountError(f"target folder: {exc}") from None
        if "*" in folders and len(folders) > 1:  # fetcher.mirror.ALL_FOLDERS
            raise AccountError("all folders, or the folders named: not both")
        if await self._store.get_mailbox(account.id, target) is None:
            with contextlib.suppress(store_errors.AlreadyExists):  # made meanwhile
                await self._store.create_mailbox(account.id, target)
        return NewFetchSource(
            account_id=account.id,
            protocol=protocol,
            host=normalize_host(request.host),
            port=port,
            security=security,
            username=request.username,
            password_secret=self.secrets.seal(request.password) if request.password else b"",
            target_folder=target,
            source_folders=folders,
            policy=parse_policy(request.policy),
            interval=request.interval,
        )

    async def list(self, address: str) -> list[FetchSource]:
        account = await self.account(address)
        return await self._store.list_fetch_sources(account.id)

    async def get(self, address: str, source_id: int) -> FetchSource:
        account = await self.account(address)
        source = await self._store.get_fetch_source(source_id)
        if source is None or source.account_id != account.id:
            raise AccountError(f"{address} has no fetch source {source_id}")
        return source

    async def remove(self, address: str, source_id: int) -> None:
        account = await self.account(address)
        try:
            await self._store.remove_fetch_source(account.id, source_id)
        except store_errors.NotFound:
            raise AccountError(f"{address} has no fetch source {source_id}") from None

    async def resume(self, address: str, source_id: int) -> FetchSource:
        """Unpause a source: the user says the password (or the provider) is fixed."""
        account = await self.account(address)
        try:
            return await self._store.resume_fetch_source(account.id, source_id)
        except store_errors.NotFound:
            raise AccountError(f"{address} has no fetch source {source_id}") from None

    # --- for the scheduler ---------------------------------------------------------------
    async def everyone(self) -> builtins.list[FetchSource]:
        """Every account's sources."""
        return await self._store.list_fetch_sources(None)

    async def current(self, source_id: int) -> FetchSource | None:
        return await self._store.get_fetch_source(source_id)

    async def claim(self, source_id: int, holder: str, seconds: float) -> FetchSource | None:
        """The source, claimed by `holder` for `seconds`; None if another node has it or
        it is gone."""
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        return await self._store.claim_fetch_source(source_id, holder, until)

    async def release(self, source_id: int, holder: str) -> None:
        await self._store.release_fetch_source(source_id, holder)

    def password_of(self, source: FetchSource) -> str:
        return self.secrets.open(source.password_secret)
