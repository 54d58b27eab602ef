"""One run of one fetch source: connect, fetch what is new, delete what the policy says,
and record how it went.

Theory of operation:
  * What is new. POP3: every message whose UIDL (RFC 1939 §7) has no record; a server
    without UIDL gets a header hash as the id instead (TOP n 0), with a warning in the
    result. IMAP, per source folder: every UID above the folder's last UID while its
    UIDVALIDITY is unchanged (RFC 9051 §2.3.1.1); after a change, every message again,
    each first compared by header digest (Message-ID and the rest of the header) with
    what was fetched under the old UIDVALIDITY, and skipped (recorded, not stored) when
    it matches; once the folder has been gone through, the old records are dropped.
  * Crash safety. Each message is delivered and recorded in one store transaction
    (`FetchDelivery.deliver`), so a run that dies at any point has stored each message
    it recorded and recorded each message it stored. A second run at the same time
    cannot store a message twice either: the second record is refused with its copy.
  * Remote deletion comes after the local commit, never before: a message is deleted
    when it has a record and the policy says so (at once for `delete`, N days after the
    record for `delete-after`). A deletion that did not complete (POP3 deletes only on
    QUIT, RFC 1939 §6) is simply done again by the next run, because the record is still
    there; records are dropped once the remote copy is known gone.
  * Messages over `max_message_size` are left on the server and never deleted.

Must not: touch the store except through `services.fetch_delivery`, or show a password.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from pillarbox.config import FetcherConfig
from pillarbox.fetcher.errors import FetchError
from pillarbox.fetcher.imap import CARRIED_FLAGS, ImapClient
from pillarbox.fetcher.mirror import BadMailboxName, local_folder, mirrors_all
from pillarbox.fetcher.network import client_context, connect, wrap
from pillarbox.fetcher.pop3 import Pop3Client
from pillarbox.model import Account
from pillarbox.model.fetch import (
    FetchedRecord,
    FetchFolderState,
    FetchProtocol,
    FetchRun,
    FetchSecurity,
    FetchSource,
    RemoteAction,
    RemotePolicy,
)
from pillarbox.services.errors import AccountError, ServiceError
from pillarbox.services.fetch_delivery import (
    AlreadyFetched,
    FetchDelivery,
    FetchOrigin,
    header_digest,
)
from pillarbox.services.fetch_sources import FetchSourceService

log = logging.getLogger("pillarbox.fetcher")
T = TypeVar("T")
# Flags kept in step with the source after the fetch (CONDSTORE); \Answered is carried
# once, at the fetch, since answering is what the user does here.
SYNCED_FLAGS = frozenset({"\\Seen", "\\Flagged"})


@dataclass(frozen=True, slots=True)
class FetcherSettings:
    allow_private: bool = False
    ca_file: str = ""
    max_message_size: int = 64 * 1024 * 1024
    timeout: float = 60.0

    @classmethod
    def from_config(cls, config: FetcherConfig) -> FetcherSettings:
        return cls(
            config.allow_private_networks,
            config.ca_file,
            config.max_message_size,
            config.timeout,
        )


class Progress(Protocol):
    """Told how a run goes, for a progress bar (`pillarbox fetch run`)."""

    def begin(self, source: FetchSource, folder: str, total: int) -> None:
        """`total` messages are new in `folder` ("" for POP3)."""

    def advance(self) -> None:
        """One of them is done (stored, skipped, or left on the server)."""

    def end(self) -> None:
        """The folder is done (also after a failure)."""


class _NoProgress:
    def begin(self, source: FetchSource, folder: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(slots=True)
class RunReport:
    """What one run did; `error` is "" when it succeeded."""

    source_id: int
    fetched: int = 0
    too_large: int = 0
    deleted: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    auth_failure: bool = False
    idle: bool = False  # IMAP: the server offers IDLE (RFC 2177), so it can be watched
    flags_changed: int = 0  # IMAP with CONDSTORE: local copies whose flags followed the source

    def summary(self) -> str:
        parts = [f"{self.fetched} new"]
        if self.too_large:
            parts.append(f"{self.too_large} too large (left on the server)")
        if self.deleted:
            parts.append(f"{self.deleted} deleted remotely")
        if self.flags_changed:
            parts.append(f"flags of {self.flags_changed} changed")
        return ", ".join(parts) + "".join(f"; {w}" for w in self.warnings)


def due_for_deletion(policy: RemotePolicy, fetched_at: datetime, now: datetime) -> bool:
    if policy.action is RemoteAction.DELETE:
        return True
    if policy.action is RemoteAction.DELETE_AFTER:
        return now - fetched_at >= timedelta(days=policy.days)
    return False


class _Stop(Exception):
    """A delivery failed (over quota, say): stop fetching, but end the session cleanly
    so that deletions already earned still happen."""

    def __init__(self, error: ServiceError) -> None:
        super().__init__(error.text)
        self.error = error


class SourceRunner:
    """Runs fetch sources (see module docstring)."""

    def __init__(
        self, sources: FetchSourceService, delivery: FetchDelivery, settings: FetcherSettings
    ) -> None:
        self._sources = sources
        self._delivery = delivery
        self.settings = settings
        self._context: ssl.SSLContext | None = None

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = client_context(self.settings.ca_file)
        return self._context

    async def run(self, source: FetchSource, progress: Progress | None = None) -> RunReport:
        """Run `source` once and record the outcome on it; never raises for a failure
        of the other server (the report and the source carry it)."""
        report = RunReport(source.id)
        shown = progress if progress is not None else _NoProgress()
        try:
            password = self._sources.password_of(source)
            account = await self._delivery.account_of(source)
            if source.protocol is FetchProtocol.POP3:
                await self._run_pop3(source, account, password, report, shown)
            else:
                await self._run_imap(source, account, password, report, shown)
        except FetchError as exc:
            report.error, report.auth_failure = str(exc), exc.auth_failure
        except _Stop as exc:
            report.error = f"stopped: {exc.error.text}"
        except (ServiceError, AccountError) as exc:
            report.error = str(exc)
        except imaplib.IMAP4.error as exc:
            report.error = f"{source.host}: IMAP error: {exc}"
        except (OSError, ssl.SSLError) as exc:
            report.error = f"{source.host}: connection lost: {exc}"
        except Exception as exc:  # a bug of ours, or a server we cannot read: logged whole
            log.exception("fetch source %d (%s) failed", source.id, source.host)
            report.error = f"{source.host}: unexpected error ({type(exc).__name__})"
        outcome = FetchRun(datetime.now(UTC), report.summary(), report.error, report.auth_failure)
        await self._delivery.record_run(source, outcome)
        if report.error:
            log.warning("fetch source %d (%s): %s", source.id, source.host, report.error)
        else:
            log.info("fetch source %d (%s): %s", source.id, source.host, report.summary())
        return report

    # --- connecting ----------------------------------------------------------------------
    def _socket(self, source: FetchSource) -> tuple[socket.socket, str]:
        s = self.settings
        sock, address = connect(
            source.host, source.port, timeout=s.timeout, allow_private=s.allow_private
        )
        return sock, address

    async def _thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def _open_pop3(self, source: FetchSource, password: str) -> tuple[Pop3Client, str]:
        def go() -> tuple[Pop3Client, str]:
            sock, address = self._socket(source)
            if source.security is FetchSecurity.TLS:
                sock = wrap(sock, self._tls(), source.host)
            client = Pop3Client(sock, source.host)
            try:
                client.greeting()
                if source.security is FetchSecurity.STARTTLS:
                    client.starttls(self._tls())
                client.login(source.username, password)
            except BaseException:
                client.close()
                raise
            return client, address

        return await self._thread(go)

    async def _open_imap(self, source: FetchSource, password: str) -> tuple[ImapClient, str]:
        return await self._thread(lambda: self.connect_imap(source, password))

    def connect_imap(self, source: FetchSource, password: str) -> tuple[ImapClient, str]:
        """A logged-in IMAP session with every check of a run (blocking: for a worker
        thread, or the IDLE watcher's own thread)."""
        sock, address = self._socket(source)
        implicit = self._tls() if source.security is FetchSecurity.TLS else None
        client = ImapClient(
            sock,
            source.host,
            source.port,
            implicit_tls=implicit,
            max_literal=self.settings.max_message_size + 64 * 1024,
        )
        try:
            if source.security is FetchSecurity.STARTTLS:
                client.starttls(self._tls())
            client.login(source.username, password)
        except BaseException:
            client.close()
            raise
        return client, address

    async def _deliver(
        self,
        source: FetchSource,
        account: Account,
        data: bytes,
        record: FetchedRecord,
        origin: FetchOrigin,
        flags: frozenset[str] = frozenset(),
        folder: str | None = None,
    ) -> bool:
        """True if stored; False if another run stored it meanwhile."""
        try:
            await self._delivery.deliver(source, account, data, record, origin, flags, folder)
        except AlreadyFetched:
            return False
        except ServiceError as exc:
            raise _Stop(exc) from exc
        return True

    # --- POP3 ----------------------------------------------------------------------------
    async def _run_pop3(
        self,
        source: FetchSource,
        account: Account,
        password: str,
        report: RunReport,
        progress: Progress,
    ) -> None:
        client, address = await self._open_pop3(source, password)
        limit = self.settings.max_message_size
        try:
            uidl = await self._thread(client.uidl)
            sizes = await self._thread(client.sizes)
            if uidl is None:
                report.warnings.append(
                    "the server has no UIDL: messages are told apart by a hash of their headers"
                )
            known = {e.remote_id: e for e in await self._delivery.fetched(source, "")}
            new = len(sizes) - len(known) if uidl is None else len(set(uidl.values()) - set(known))
            progress.begin(source, "", max(new, 0))
            origin = FetchOrigin(source.host, address, "POP3", client.tls)
            present: set[str] = set()
            deleting: list[str] = []
            stop: _Stop | None = None
            for number in sorted(sizes):
                size = sizes[number]
                now = datetime.now(UTC)
                if uidl is not None:
                    if number not in uidl:
                        continue
                    remote_id = uidl[number]
                elif size > limit:
                    report.too_large += 1
                    continue
                else:
                    head = await asyncio.to_thread(client.headers, number, limit)
                    remote_id = "sha256:" + header_digest(head)
                present.add(remote_id)
                entry = known.get(remote_id)
                if entry is not None:
                    if due_for_deletion(source.policy, entry.fetched_at, now):
                        await asyncio.to_thread(client.delete, number)
                        deleting.append(remote_id)
                    continue
                progress.advance()
                if stop is not None:
                    continue
                if size > limit:
                    report.too_large += 1
                    continue
                data = await asyncio.to_thread(client.retrieve, number, limit)
                record = FetchedRecord(source.id, "", remote_id, header_digest(data), now)
                try:
                    stored = await self._deliver(source, account, data, record, origin)
                except _Stop as exc:
                    stop = exc  # still QUIT: deletions earned so far go through
                    continue
                report.fetched += stored
                if stored and due_for_deletion(source.policy, now, now):
                    await asyncio.to_thread(client.delete, number)
                    deleting.append(remote_id)
            await self._thread(client.quit)
            report.deleted = len(deleting)
            # Records of messages no longer on the server (deleted now, or by the user).
            gone = [rid for rid in known if rid not in present] + deleting
            await self._delivery.forget(source, "", gone)
            if stop is not None:
                raise stop
        finally:
            progress.end()
            client.close()

    # --- IMAP ----------------------------------------------------------------------------
    async def _run_imap(
        self,
        source: FetchSource,
        account: Account,
        password: str,
        report: RunReport,
        progress: Progress,
    ) -> None:
        client, address = await self._open_imap(source, password)
        try:
            origin = FetchOrigin(source.host, address, "IMAP", client.tls)
            report.idle = "IDLE" in client.capabilities
            states = await self._delivery.folders(source)
            for folder, local in await self._imap_folders(client, source, account, report):
                try:
                    await self._imap_folder(
                        client,
                        source,
                        account,
                        folder,
                        local,
                        states.get(folder),
                        origin,
                        report,
                        progress,
                    )
                finally:
                    progress.end()
            await self._thread(client.logout)
        finally:
            client.close()

    async def _imap_folders(
        self, client: ImapClient, source: FetchSource, account: Account, report: RunReport
    ) -> list[tuple[str, str]]:
        """(source folder, local folder) pairs to fetch: the named source folders into
        the target folder, or every folder of a source that mirrors all (`mirror`)."""
        if not mirrors_all(source.source_folders):
            named = source.source_folders or ("INBOX",)
            return [(folder, source.target_folder) for folder in named]
        pairs: list[tuple[str, str]] = []
        for remote in await self._thread(client.folders):
            try:
                local = local_folder(remote, source.target_folder)
            except BadMailboxName as exc:
                report.warnings.append(f"folder {remote.name!r} skipped: {exc}")
                continue
            if local is not None:
                name = await self._delivery.local_folder(account, local.name, local.special_use)
                pairs.append((remote.name, name))
        return pairs

    async def _imap_folder(
        self,
        client: ImapClient,
        source: FetchSource,
        account: Account,
        folder: str,
        local: str,
        state: FetchFolderState | None,
        origin: FetchOrigin,
        report: RunReport,
        progress: Progress,
    ) -> None:
        limit = self.settings.max_message_size
        keep = source.policy.action is RemoteAction.KEEP
        condstore = "CONDSTORE" in client.capabilities
        uidvalidity = await self._thread(
            lambda: client.select(folder, readonly=keep, condstore=condstore)
        )
        modseq = client.highestmodseq
        entries = await self._delivery.fetched(source, folder)
        old_digests = {e.digest for e in entries if e.uidvalidity != uidvalidity}
        same = state is not None and state.uidvalidity == uidvalidity
        first = state.last_uid + 1 if state is not None and same else 1
        uids = await self._thread(lambda: client.uids_from(first))
        info = await self._thread(lambda: client.sizes_and_flags(uids))
        current = {int(e.remote_id): e.fetched_at for e in entries if e.uidvalidity == uidvalidity}
        progress.begin(source, folder, len(uids))
        for uid in uids:
            progress.advance()
            if uid not in info:
                continue
            size, flags = info[uid]
            if size > limit:
                report.too_large += 1
                continue
            now = datetime.now(UTC)
            if old_digests:
                head = await asyncio.to_thread(client.body, uid, "HEADER")
                if head is not None and header_digest(head) in old_digests:
                    digest = header_digest(head)
                    record = FetchedRecord(
                        source.id, folder, str(uid), digest, now, uidvalidity, uid
                    )
                    await self._delivery.mark([record])
                    current[uid] = now
                    continue
            data = await asyncio.to_thread(client.body, uid)
            if data is None:
                continue  # expunged meanwhile
            carried = frozenset(f for f in flags if f in CARRIED_FLAGS)
            record = FetchedRecord(
                source.id,
                folder,
                str(uid),
                header_digest(data),
                now,
                uidvalidity,
                uid,
                carried & SYNCED_FLAGS,
            )
            if await self._deliver(source, account, data, record, origin, carried, local):
                report.fetched += 1
                current[uid] = now
        if old_digests:
            await self._delivery.forget(source, folder, [], keep_uidvalidity=uidvalidity)
        known, known_uid = (state.highestmodseq, state.last_uid) if state and same else (0, 0)
        if known and modseq is not None and modseq > known:  # RFC 7162 §3.1.2.1: changes
            changes = await self._thread(lambda: client.flags_changed_since(known, known_uid))
            report.flags_changed += await self._delivery.carry_flags(
                source, folder, uidvalidity, changes, SYNCED_FLAGS
            )
        highest = max(uids, default=0)
        new_modseq = modseq or 0
        if (
            not same
            or state is None
            or highest > state.last_uid
            or new_modseq != state.highestmodseq
        ):
            # Also past messages left on the server (too large): they are not taken later.
            # The HIGHESTMODSEQ of the SELECT: a change after it is seen by the next run.
            last = max(highest, state.last_uid if state is not None and same else 0)
            await self._delivery.set_folder(
                source, FetchFolderState(folder, uidvalidity, last, new_modseq)
            )
        if keep:
            return
        now = datetime.now(UTC)
        doomed = sorted(u for u, at in current.items() if due_for_deletion(source.policy, at, now))
        if doomed:
            await self._thread(lambda: client.delete(doomed))
            report.deleted += len(doomed)
            await self._delivery.forget(source, folder, [str(u) for u in doomed])
