"""The `pillarbox` command: a table of small subcommands that call services.

These commands are a contract for scripts: `pillarbox --config F user add ADDR
--password-stdin` prints nothing on success and exits non-zero with one clear line on
stderr on failure. Configuration problems exit with status 2, bad requests with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import asyncpg
from tqdm import tqdm

from pillarbox import config as config_mod
from pillarbox import log
from pillarbox.backends import backend_name, open_store
from pillarbox.config import Config, ConfigError
from pillarbox.eventloop import run_event_loop
from pillarbox.mailauth import dkim
from pillarbox.mailauth.zone import dns_records, txt_strings
from pillarbox.model import PopOnRetrieve, PopScope, QueuedMessage
from pillarbox.model.fetch import FetchSource
from pillarbox.model.queue import DkimKey
from pillarbox.services.accounts import AccountService, normalize_domain
from pillarbox.services.errors import AccountError, QueueEntryGone, ServiceError
from pillarbox.services.fetch_sources import (
    DEFAULT_INTERVAL,
    KEY_FILE,
    FetchSourceService,
    SecretBox,
    SourceRequest,
)
from pillarbox.services.queue import QueueService
from pillarbox.store.api import Store
from pillarbox.store.errors import StoreError
from pillarbox.store.postgres import schema as pg_schema
from pillarbox.store.postgres.errors import map_error as pg_map_error
from pillarbox.store.sqlite import schema as sqlite_schema
from pillarbox.store.sqlite.core import DB_NAME as SQLITE_DB_NAME
from pillarbox.store.transfer import TABLES as TRANSFER_TABLES
from pillarbox.store.transfer import TransferError, transfer

if TYPE_CHECKING:  # the fetcher and the servers are imported by the commands that run them
    from pillarbox.fetcher.runner import RunReport, SourceRunner

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_CONFIG = 2


class CliError(Exception):
    """A failure to report as one line and exit 1."""


def _run_with_accounts(config: Config, fn: Callable[[AccountService], Awaitable[T]]) -> T:
    async def runner() -> T:
        config_mod.check_data_dir(config)
        store = open_store(config)
        await store.open()
        try:
            return await fn(AccountService(store))
        finally:
            await store.close()

    return asyncio.run(runner())


def _run_with_store(config: Config, fn: Callable[[Store], Awaitable[T]]) -> T:
    async def runner() -> T:
        config_mod.check_data_dir(config)
        store = open_store(config)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(runner())


def _run_with_queue(config: Config, fn: Callable[[QueueService], Awaitable[T]]) -> T:
    return _run_with_store(config, lambda store: fn(QueueService(store)))


def _read_password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin or when stdin is not a terminal; else prompted."""
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Repeat password: ")
    if first != second:
        raise CliError("passwords do not match")
    return first


# --- commands --------------------------------------------------------------------------


def _print_started(
    config: Config, args: argparse.Namespace, addresses: dict[str, tuple[str, int]]
) -> None:
    """The start-up lines (tests/e2e/serve.py parses "NAME listening on HOST:PORT")."""
    from pillarbox.web.listener import browser_url

    print(f"Pillarbox {config.server.hostname}: data in {config.data_path}", flush=True)
    for name, (host, port) in addresses.items():
        if name == "http":
            url = browser_url(host, port, config.server.hostname)
            where = f"{host}:{port} (webmail: open {url} in a browser)"
            print(f"  {'http':<12} listening on {where}", flush=True)
        else:
            print(f"  {name:<12} listening on {host}:{port}", flush=True)
    delivery = config.delivery
    if delivery.relay:
        route = f"through the relay {delivery.relay} ({delivery.relay_security})"
    else:
        route = f"to each domain's MX on port {delivery.port}"
    print(f"  {'outbound':<12} sending {route}", flush=True)


def _print_no_accounts(args: argparse.Namespace) -> None:
    prog = "pillarbox" + (f" --config {args.config}" if args.config else "")
    print(
        "No accounts yet. Add one with:\n"
        f"  {prog} domain add example.org\n"
        f"  {prog} user add you@example.org\n"
        "(from this checkout: .venv/bin/pillarbox ...)",
        flush=True,
    )


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    if config.server.workers > 1:
        return _serve_workers(config, args)
    from pillarbox.app import serve

    log.setup(config.server.log_level)
    config_mod.check_data_dir(config)

    def ready(app: object) -> None:
        from pillarbox.app import App

        assert isinstance(app, App)
        _print_started(config, args, app.addresses())
        store = app.store
        assert store is not None

        async def hint() -> None:
            if not await store.list_accounts():
                _print_no_accounts(args)

        asyncio.get_running_loop().create_task(hint())

    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(serve(config, ready))
    return 0


def _serve_workers(config: Config, args: argparse.Namespace) -> int:
    """`serve` with `[server] workers` > 1: this process is the master (workers/master.py)."""
    from pillarbox.workers.master import Master, worker_command

    log.setup(config.server.log_level, process="master")
    config_mod.check_data_dir(config)

    async def run() -> int:
        # Once, before any worker: migrations and (SQLite) orphan collection.
        store = open_store(config, server=True)
        await store.open()
        try:
            accounts = bool(await store.list_accounts())
        finally:
            await store.close()

        def announce(addresses: dict[str, tuple[str, int]]) -> None:
            _print_started(config, args, addresses)
            if not accounts:
                _print_no_accounts(args)

        master = Master(
            config,
            command=worker_command(args.config),
            stamped=backend_name(config) == "sqlite",
            announce=announce,
        )
        return await master.run()

    status = 0

    async def main() -> None:
        nonlocal status
        status = await run()

    with contextlib.suppress(KeyboardInterrupt):
        run_event_loop(main())
    return status


def cmd_worker_process(config: Config, args: argparse.Namespace) -> int:
    """One worker of `serve` (started by the master, never by hand: not in --help)."""
    from pillarbox.app import serve
    from pillarbox.workers.worker import WorkerLink, die_with_parent

    die_with_parent(args.master)
    link = WorkerLink.attach(args.index, args.up, args.down, args.counter)
    log.setup(link.config.server.log_level, process=link.name)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run_event_loop(serve(link.config, worker=link))
    finally:
        link.close()
    return 0


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    config_mod.check_data_dir(config)  # silent on success, like every other command
    return 0


def cmd_domain_add(config: Config, args: argparse.Namespace) -> int:
    _run_with_accounts(config, lambda a: a.add_domain(args.domain))
    return 0


def cmd_domain_list(config: Config, args: argparse.Namespace) -> int:
    for domain in _run_with_accounts(config, lambda a: a.list_domains()):
        print(domain.name)
    return 0


def cmd_domain_remove(config: Config, args: argparse.Namespace) -> int:
    _run_with_accounts(config, lambda a: a.remove_domain(args.domain))
    return 0


def cmd_user_add(config: Config, args: argparse.Namespace) -> int:
    password = _read_password(args)
    _run_with_accounts(config, lambda a: a.add_user(args.address, password))
    return 0


def cmd_user_list(config: Config, args: argparse.Namespace) -> int:
    for account in _run_with_accounts(config, lambda a: a.list_users(args.domain)):
        print(account.address)
    return 0


def cmd_user_passwd(config: Config, args: argparse.Namespace) -> int:
    password = _read_password(args)
    _run_with_accounts(config, lambda a: a.set_password(args.address, password))
    return 0


def cmd_user_remove(config: Config, args: argparse.Namespace) -> int:
    _run_with_accounts(config, lambda a: a.remove_user(args.address))
    return 0


def cmd_user_pop(config: Config, args: argparse.Namespace) -> int:
    on_retrieve = PopOnRetrieve(args.on_retrieve)
    scope = PopScope(args.scope)
    _run_with_accounts(config, lambda a: a.set_pop_policy(args.address, on_retrieve, scope))
    return 0


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from "500M", "2G", "1048576", or 0 from "0"/"none" (no quota)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    if value in ("0", "NONE"):
        return 0
    number, unit = (value[:-1], value[-1]) if value[-1:] in _SIZE_UNITS else (value, "")
    if not number.isdigit():
        raise CliError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    return int(number) * _SIZE_UNITS[unit]


def parse_count(text: str) -> int:
    """A number of messages from "100000", or 0 from "0"/"none" (no limit)."""
    value = text.strip().upper()
    if value == "NONE":
        return 0
    if not value.isdigit():
        raise CliError(f"not a number of messages: {text!r} (a whole number, 0 for no limit)")
    return int(value)


def cmd_user_quota(config: Config, args: argparse.Namespace) -> int:
    # `user quota ADDRESS SIZE` is the older form, kept as it was for scripts; the
    # options set either limit alone and leave the other as it is.
    if args.size is not None and args.storage is not None:
        raise CliError("give the size either as SIZE or as --storage, not both")
    storage_text = args.size if args.size is not None else args.storage
    if storage_text is None and args.messages is None:
        raise CliError("give a limit: SIZE, --storage SIZE or --messages N")
    storage = None if storage_text is None else parse_size(storage_text)
    messages = None if args.messages is None else parse_count(args.messages)
    _run_with_accounts(config, lambda a: a.set_quota(args.address, storage, messages))
    return 0


def cmd_alias_add(config: Config, args: argparse.Namespace) -> int:
    _run_with_accounts(config, lambda a: a.add_alias(args.source, args.targets))
    return 0


def cmd_alias_list(config: Config, args: argparse.Namespace) -> int:
    for alias in _run_with_accounts(config, lambda a: a.list_aliases()):
        print(f"{alias.source} -> {', '.join(alias.targets)}")
    return 0


def cmd_alias_remove(config: Config, args: argparse.Namespace) -> int:
    _run_with_accounts(config, lambda a: a.remove_alias(args.source))
    return 0


def cmd_mailbox_list(config: Config, args: argparse.Namespace) -> int:
    for mailbox in _run_with_accounts(config, lambda a: a.list_mailboxes(args.address)):
        role = f" ({mailbox.special_use})" if mailbox.special_use else ""
        print(f"{mailbox.name}{role}")
    return 0


def _utc(when: datetime | None) -> str:
    """ISO 8601 in UTC to the second, or "-"."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(text: str) -> str:
    """Remote replies may span lines; a listing keeps one entry per line."""
    return " ".join(text.split()) or "-"


def _sender(entry: QueuedMessage) -> str:
    return entry.sender or "<>"


def cmd_queue_list(config: Config, args: argparse.Namespace) -> int:
    """A header and one line per entry, columns aligned, the last error last (it may
    hold spaces: split each line at most five times). Nothing at all when empty."""
    entries = _run_with_queue(config, lambda q: q.list())
    if not entries:
        return 0
    rows = [("ID", "SENDER", "RECIPIENTS", "ATTEMPTS", "NEXT-TRY", "LAST-ERROR")]
    for e in entries:
        pending = ",".join(r.address for r in e.pending) or "-"
        rows.append(
            (
                str(e.id),
                _sender(e),
                pending,
                str(e.attempts),
                _utc(e.next_attempt),
                _one_line(e.last_error),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[5]
        )
    return 0


def cmd_queue_show(config: Config, args: argparse.Namespace) -> int:
    async def fetch(queue: QueueService) -> tuple[QueuedMessage, bytes]:
        entry = await queue.get(args.id)
        if entry is None:
            raise CliError(f"no queue entry {args.id}")
        return entry, await queue.read_headers(entry)

    e, headers = _run_with_queue(config, fetch)
    print(f"id: {e.id}")
    print(f"sender: <{e.sender}>")
    print(f"origin: {e.origin.value}")
    print(f"created: {_utc(e.created_at)}")
    print(f"next-try: {_utc(e.next_attempt)}")
    print(f"attempts: {e.attempts}")
    print(f"last-error: {_one_line(e.last_error)}")
    print(f"delay-warning-sent: {'yes' if e.warned else 'no'}")
    print(f"held-until: {_utc(e.claimed_until)}")
    print(f"size: {e.size}")
    print(f"dsn-envid: {e.dsn_envid or '-'}")
    print(f"dsn-ret: {e.dsn_ret or '-'}")
    print("recipients:")
    for r in e.recipients:
        print(
            f"  {r.position}  {r.address}  {r.state.value}  status={r.status or '-'}"
            f"  remote-mta={r.remote_mta or '-'}  notify={r.notify or '-'}"
            f"  orcpt={r.orcpt or '-'}  diagnostic={_one_line(r.diagnostic)}"
        )
    print("headers:")
    for line in headers.decode("utf-8", "replace").splitlines():
        print(f"  {line}")
    return 0


def cmd_queue_retry(config: Config, args: argparse.Namespace) -> int:
    count = _run_with_queue(config, lambda q: q.retry(args.id))
    if args.id is not None and count == 0:
        raise CliError(f"no queue entry {args.id}")
    print(f"{count} {'entry' if count == 1 else 'entries'} due now")
    return 0


def cmd_queue_delete(config: Config, args: argparse.Namespace) -> int:
    if not _run_with_queue(config, lambda q: q.delete(args.id)):
        raise CliError(f"no queue entry {args.id}")
    return 0


def _run_with_fetch(
    config: Config, fn: Callable[[FetchSourceService, SourceRunner], Awaitable[T]]
) -> T:
    from pillarbox.fetcher.runner import FetcherSettings, SourceRunner
    from pillarbox.services.fetch_delivery import FetchDelivery

    def wire(store: Store) -> Awaitable[T]:
        sources = FetchSourceService(store, SecretBox(config.data_path / KEY_FILE))
        delivery = FetchDelivery(store, hostname=config.server.hostname)
        runner = SourceRunner(sources, delivery, FetcherSettings.from_config(config.fetcher))
        return fn(sources, runner)

    return _run_with_store(config, wire)


def _folder(name: str) -> str:
    """A folder name as one column: quoted when it holds a space or a quote."""
    return json.dumps(name, ensure_ascii=False) if any(c in name for c in ' "') else name


def cmd_fetch_add(config: Config, args: argparse.Namespace) -> int:
    password = _read_password(args)
    request = SourceRequest(
        protocol=args.protocol,
        host=args.host,
        port=args.port,
        security=args.security,
        username=args.user,
        password=password,
        policy=args.remote,
        target_folder=args.folder,
        source_folders=("*",) * args.all_folders + tuple(args.source_folder or ()),
        interval=args.interval,
    )
    source = _run_with_fetch(config, lambda sources, _: sources.add(args.address, request))
    print(source.id)
    return 0


def cmd_fetch_list(config: Config, args: argparse.Namespace) -> int:
    """A header and one line per source, columns aligned, the last result (or error)
    last: it holds spaces, so split each line at most nine times; a folder name with
    spaces is shown as a JSON string ("Old mail"). A paused source's result starts with
    "paused". Never the password."""
    found = _run_with_fetch(config, lambda sources, _: sources.list(args.address))
    if not found:
        return 0
    rows = [
        (
            "ID",
            "PROTOCOL",
            "SECURITY",
            "HOST",
            "USER",
            "FOLDER",
            "REMOTE",
            "INTERVAL",
            "LAST-RUN",
            "LAST-RESULT",
        )
    ]
    for s in found:
        if s.last_error:
            result = f"error: {s.last_error}"
            if s.auth_failures:
                result += f" ({s.auth_failures} authentication failures in a row)"
        else:
            result = s.last_result or "-"
        if s.paused:
            result = f"paused until 'pillarbox fetch resume': {result}"
        rows.append(
            (
                str(s.id),
                s.protocol.value,
                s.security.value,
                f"{s.host}:{s.port}",
                s.username,
                _folder(s.target_folder),
                str(s.policy),
                str(s.interval),
                _utc(s.last_run_at),
                _one_line(result),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(9)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[9])
    return 0


# New messages in one folder from which `fetch run` draws a progress bar: fewer are done
# before a bar is worth drawing. (A large first fetch, typically.)
PROGRESS_FROM = 100


class TerminalProgress:
    """`fetcher.runner.Progress` as a tqdm bar per folder on stderr, only when stderr is a
    terminal: stdout carries the contract's bare count, and a script that reads stderr
    sees no bar either."""

    def __init__(self) -> None:
        self._bar: Any = None

    def begin(self, source: FetchSource, folder: str, total: int) -> None:
        self.end()
        if total >= PROGRESS_FROM:
            where = f"{source.host} {folder}".rstrip()
            desc = f"source {source.id} ({where})"
            self._bar = tqdm(total=total, desc=desc, unit="msg", file=sys.stderr)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def cmd_fetch_run(config: Config, args: argparse.Namespace) -> int:
    """Prints the number of messages that arrived; a failing source adds one line on
    stderr and makes the exit status 1 (what the others fetched is kept and counted)."""

    async def run(sources: FetchSourceService, runner: SourceRunner) -> list[RunReport]:
        if args.id is not None:
            chosen = [await sources.get(args.address, args.id)]
        else:
            chosen = await sources.list(args.address)
        progress = TerminalProgress() if sys.stderr.isatty() else None
        return [await runner.run(source, progress) for source in chosen]

    # The runner logs each failure for the server's log; here the lines below say it.
    logging.getLogger("pillarbox").addHandler(logging.NullHandler())
    reports = _run_with_fetch(config, run)
    print(sum(r.fetched for r in reports))
    failed = [r for r in reports if r.error]
    for r in failed:
        print(f"pillarbox: fetch source {r.source_id}: {_one_line(r.error)}", file=sys.stderr)
    return EXIT_FAILURE if failed else 0


def cmd_fetch_resume(config: Config, args: argparse.Namespace) -> int:
    """Unpause a source (the password or the provider was fixed); a running server
    takes it up again within `[fetcher] rescan` seconds."""
    _run_with_fetch(config, lambda sources, _: sources.resume(args.address, args.id))
    return 0


def cmd_fetch_remove(config: Config, args: argparse.Namespace) -> int:
    _run_with_fetch(config, lambda sources, _: sources.remove(args.address, args.id))
    return 0


# --- schema and moving stores ----------------------------------------------------------


def _sqlite_version(db: Path) -> int:
    """The schema version of a SQLite store file, read-only (0: no file or no schema)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if found is None:
            return 0
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    finally:
        conn.close()


async def _migrate_postgres(dsn: str) -> tuple[int, int]:
    """Run PostgreSQL's migrations under their advisory lock (a node starting at the
    same time waits, then finds nothing to do); a newer schema refuses."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except Exception as exc:
        raise pg_map_error(exc) from exc
    lock = pg_schema._MIGRATE_LOCK
    try:
        # The runner's own lock, taken once more around it (session advisory locks
        # nest), so "before" is read after a concurrent run has finished.
        await conn.execute("SELECT pg_advisory_lock($1, $2)", *lock)
        try:
            before = await pg_schema.current_version(conn)
            after = await pg_schema.migrate(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", *lock)
    except StoreError:
        raise
    except Exception as exc:
        raise pg_map_error(exc) from exc
    finally:
        await conn.close()
    return before, after


def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    """Bring the configured store's schema to this release's version and say from which
    to which. `serve` does the same at start; this is for doing it beforehand (one step
    of an upgrade, every node stopped) and for seeing where a database stands."""
    backend = backend_name(config)
    if backend == "postgres":
        before, after = asyncio.run(_migrate_postgres(config.store_dsn))
    else:
        config_mod.check_data_dir(config)
        db = config.data_path / SQLITE_DB_NAME
        before = _sqlite_version(db)
        known = sqlite_schema.migrations()[-1][0]
        if before > known:  # as PostgreSQL refuses (store.postgres.schema)
            raise CliError(
                f"the database schema is version {before}, newer than this Pillarbox "
                f"knows ({known}): use the release that wrote it"
            )

        async def run() -> None:
            store = open_store(config)  # open() migrates (and moves the text index)
            await store.open()
            await store.close()

        asyncio.run(run())
        after = _sqlite_version(db)
    state = "up to date" if before == after else "migrated"
    print(f"{backend} schema version {before} -> {after} ({state})")
    return 0


class BytesProgress:
    """`store.transfer.Progress` as one tqdm bar by bytes on stderr (a terminal only)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def begin(self, total_bytes: int) -> None:
        if sys.stderr.isatty():
            self._bar = tqdm(
                total=total_bytes,
                desc="message files",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
            )

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _store_location(text: str, scheme: str) -> str:
    """PATH from "sqlite:PATH", DSN from "postgres:DSN" (a bare postgresql:// URL too)."""
    if scheme == "postgres" and text.startswith(("postgresql://", "postgres://")):
        return text
    prefix = scheme + ":"
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise CliError(f"expected {prefix}{'PATH' if scheme == 'sqlite' else 'DSN'}, got {text!r}")
    value = text[len(prefix) :]
    if scheme == "postgres" and not value.startswith(("postgresql://", "postgres://")):
        raise CliError(f"not a postgresql:// URL: {value!r}")
    return value


def cmd_migrate_store(config: Config, args: argparse.Namespace) -> int:
    """Copy a SQLite store (its data_dir) into a new, empty PostgreSQL database. Stop the
    server first: the copy is one snapshot of the SQLite files."""
    data_dir = Path(_store_location(args.source, "sqlite")).expanduser().resolve()
    dsn = _store_location(args.target, "postgres")
    try:
        report = asyncio.run(transfer(data_dir, dsn, BytesProgress()))
    except TransferError as exc:
        raise CliError(str(exc)) from None
    tables = sum(report.rows.get(t, 0) for t in TRANSFER_TABLES)
    print(
        f"copied {tables} rows, {report.rows.get('blob_chunks', 0)} chunks "
        f"({report.blob_bytes} bytes of mail) and {report.rows.get('blob_text', 0)} "
        f"search texts into schema version {report.schema_version}"
    )
    print(
        f"verified: row counts of {len(report.rows)} tables, {report.mailboxes_checked} "
        f"mailboxes, {report.blobs_hashed} blobs by sha256"
    )
    return 0


# --- parser ----------------------------------------------------------------------------


# DKIM keys. By default a domain gets two keys, Ed25519 and RSA 2048, and outgoing mail is
# signed with both (RFC 8463 §1: Ed25519 signatures with an RSA one beside them, because many
# receivers cannot verify Ed25519 yet and ignore it). The default selector names the month
# (pb202612), so a rotated key gets a new name and the old record can stay published until
# mail signed with it has been delivered (RFC 6376 §3.1).
DKIM_ALGORITHMS = {"ed25519": ["ed25519-sha256"], "rsa": ["rsa-sha256"]}
DKIM_ALGORITHMS["both"] = DKIM_ALGORITHMS["ed25519"] + DKIM_ALGORITHMS["rsa"]
SELECTOR_SUFFIX = {"ed25519-sha256": "e", "rsa-sha256": "r"}


def dkim_selectors(selector: str | None, algorithms: list[str]) -> list[str]:
    """One selector per algorithm: `selector` (default pbYYYYMM) itself for one key, with
    an "e"/"r" suffix for the pair."""
    base = selector or datetime.now(UTC).strftime("pb%Y%m")
    if len(algorithms) == 1:
        return [base]
    return [base + SELECTOR_SUFFIX[a] for a in algorithms]


def cmd_dkim_generate(config: Config, args: argparse.Namespace) -> int:
    domain = normalize_domain(args.domain)
    algorithms = DKIM_ALGORITHMS[args.algorithm]
    selectors = dkim_selectors(args.selector, algorithms)

    async def generate(store: Store) -> list[DkimKey]:
        if domain not in {d.name for d in await store.list_domains()}:
            raise CliError(f"{domain} is not a local domain (pillarbox domain add {domain})")
        keys = [dkim.generate_key(domain, s, a) for s, a in zip(selectors, algorithms, strict=True)]
        for key in keys:
            await store.put_dkim_key(key)
        return keys

    for key in _run_with_store(config, generate):
        name = f"{key.selector}._domainkey.{key.domain}."
        print(f"{name} IN TXT {txt_strings(dkim.key_record(key))}")
    return 0


def cmd_dns(config: Config, args: argparse.Namespace) -> int:
    domain = normalize_domain(args.domain)
    keys = _run_with_store(config, lambda store: store.list_dkim_keys(domain))
    sys.stdout.write(dns_records(domain, config.server.hostname, keys))
    if not keys:
        print(f"; no DKIM key yet: pillarbox dkim generate {domain}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors (no command, unknown option) exiting with status 1, a
    bad request: argparse's own 2 is this CLI's code for configuration problems."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pillarbox", description="Pillarbox mail server: SMTP, IMAP, POP3 on one store."
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML configuration file (default: $PILLARBOX_CONFIG)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the server with every configured listener")
    p.set_defaults(func=cmd_serve)
    # A worker of `serve` (workers/worker.py): no help, so --help does not list it.
    p = sub.add_parser("worker-process")
    for option in ("--index", "--master", "--up", "--down"):
        p.add_argument(option, type=int, required=True)
    p.add_argument("--counter", type=int, default=None)
    p.set_defaults(func=cmd_worker_process)
    p = sub.add_parser("check-config", help="validate the configuration and exit")
    p.set_defaults(func=cmd_check_config)

    domain = sub.add_parser("domain", help="manage local domains")
    dsub = domain.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("add", help="add a local domain")
    p.add_argument("domain")
    p.set_defaults(func=cmd_domain_add)
    p = dsub.add_parser("list", help="list local domains")
    p.set_defaults(func=cmd_domain_list)
    p = dsub.add_parser("remove", help="remove a domain that has no accounts or aliases")
    p.add_argument("domain")
    p.set_defaults(func=cmd_domain_remove)

    user = sub.add_parser("user", help="manage accounts")
    usub = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, helptext in (
        ("add", cmd_user_add, "add an account (password from stdin or prompted)"),
        ("passwd", cmd_user_passwd, "change an account's password"),
    ):
        p = usub.add_parser(name, help=helptext)
        p.add_argument("address")
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        p.set_defaults(func=func)
    p = usub.add_parser("list", help="list accounts")
    p.add_argument("domain", nargs="?", help="only accounts of this domain")
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser("remove", help="remove an account and all its mail")
    p.add_argument("address")
    p.set_defaults(func=cmd_user_remove)
    p = usub.add_parser("pop", help="set what POP3 downloads do to the server copy")
    p.add_argument("address")
    p.add_argument(
        "--on-retrieve",
        choices=[m.value for m in PopOnRetrieve],
        default=PopOnRetrieve.DELETE.value,
        help="what DELE+QUIT does: keep (hide from POP), mark-read, archive, delete",
    )
    p.add_argument(
        "--scope",
        choices=[m.value for m in PopScope],
        default=PopScope.ALL.value,
        help="all INBOX mail, or only mail that arrives from now on",
    )
    p.set_defaults(func=cmd_user_pop)
    p = usub.add_parser(
        "quota", help="limit the bytes and the number of messages an account's mail may take"
    )
    p.add_argument("address")
    p.add_argument(
        "size",
        nargs="?",
        help="bytes, or with K/M/G/T (1024-based); 0 or 'none' for no limit (as --storage)",
    )
    p.add_argument(
        "--storage",
        metavar="SIZE",
        help="the byte limit: bytes, or with K/M/G/T (1024-based); 0 or 'none' for no limit",
    )
    p.add_argument(
        "--messages", metavar="N", help="the most messages the account may hold; 0 for no limit"
    )
    p.set_defaults(func=cmd_user_quota)

    alias = sub.add_parser("alias", help="manage aliases ('@domain' is a catch-all)")
    asub = alias.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = asub.add_parser("add", help="add an alias to one or more targets")
    p.add_argument("source")
    p.add_argument("targets", nargs="+")
    p.set_defaults(func=cmd_alias_add)
    p = asub.add_parser("list", help="list aliases")
    p.set_defaults(func=cmd_alias_list)
    p = asub.add_parser("remove", help="remove an alias")
    p.add_argument("source")
    p.set_defaults(func=cmd_alias_remove)

    mailbox = sub.add_parser("mailbox", help="inspect mailboxes")
    msub = mailbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = msub.add_parser("list", help="list an account's mailboxes")
    p.add_argument("address")
    p.set_defaults(func=cmd_mailbox_list)

    queue = sub.add_parser("queue", help="inspect and manage the outbound queue")
    qsub = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = qsub.add_parser("list", help="list queued messages (nothing when the queue is empty)")
    p.set_defaults(func=cmd_queue_list)
    p = qsub.add_parser("show", help="show a queued message, its recipients and headers")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_queue_show)
    p = qsub.add_parser("retry", help="make one queued message (or all) due now")
    p.add_argument("id", type=int, nargs="?")
    p.set_defaults(func=cmd_queue_retry)
    p = qsub.add_parser("delete", help="drop a queued message without sending or bouncing it")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_queue_delete)

    dkim_cmd = sub.add_parser("dkim", help="manage DKIM signing keys")
    ksub = dkim_cmd.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = ksub.add_parser(
        "generate", help="make signing keys for a domain and print the TXT records to publish"
    )
    p.add_argument("domain")
    p.add_argument("--selector", help="selector (default: pbYYYYMM, +e/+r for the pair)")
    p.add_argument(
        "--algorithm",
        choices=sorted(DKIM_ALGORITHMS),
        default="both",
        help="key type (default: both, an Ed25519 and an RSA key, each signing)",
    )
    p.set_defaults(func=cmd_dkim_generate)

    fetch = sub.add_parser("fetch", help="fetch mail from the user's accounts elsewhere")
    fsub = fetch.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = fsub.add_parser("add", help="add a POP3 or IMAP account to fetch from; prints its id")
    p.add_argument("address")
    p.add_argument("--protocol", required=True, choices=["pop3", "imap"])
    p.add_argument("--host", required=True)
    p.add_argument("--port", required=True, type=int)
    p.add_argument(
        "--security",
        required=True,
        choices=["tls", "starttls", "none"],
        help="tls (implicit), starttls (required), none (plain text: only if you must)",
    )
    p.add_argument("--user", required=True, help="the user name at the other server")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument(
        "--remote",
        default="keep",
        metavar="keep|delete|delete-after:DAYS",
        help="what to do with the remote copy once stored here (default: keep)",
    )
    p.add_argument("--folder", default="INBOX", help="the folder here (default: INBOX)")
    p.add_argument(
        "--source-folder",
        action="append",
        metavar="F",
        help="IMAP: a folder to fetch from (repeatable; default: INBOX)",
    )
    p.add_argument(
        "--all-folders",
        action="store_true",
        help="IMAP: mirror every folder (but Trash and Junk) into folders of the same name",
    )
    p.add_argument(
        "--interval",
        type=int,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help=f"seconds between fetches (default: {DEFAULT_INTERVAL})",
    )
    p.set_defaults(func=cmd_fetch_add)
    p = fsub.add_parser("list", help="list an account's sources and how their last run went")
    p.add_argument("address")
    p.set_defaults(func=cmd_fetch_list)
    p = fsub.add_parser("run", help="fetch now (one source or all); prints how many arrived")
    p.add_argument("address")
    p.add_argument("id", type=int, nargs="?")
    p.set_defaults(func=cmd_fetch_run)
    p = fsub.add_parser("remove", help="remove a source (what it fetched stays here)")
    p.add_argument("address")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_fetch_remove)
    p = fsub.add_parser(
        "resume", help="run a source again that three authentication failures paused"
    )
    p.add_argument("address")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_fetch_resume)

    p = sub.add_parser(
        "migrate", help="bring the store's schema to this release (prints the version before/after)"
    )
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser(
        "migrate-store", help="copy a SQLite store into a new, empty PostgreSQL database"
    )
    p.add_argument(
        "--from", dest="source", required=True, metavar="sqlite:PATH", help="the data_dir"
    )
    p.add_argument(
        "--to", dest="target", required=True, metavar="postgres:DSN", help="an empty database"
    )
    p.set_defaults(func=cmd_migrate_store)

    p = sub.add_parser("dns", help="print the DNS records a domain needs, in zone-file syntax")
    p.add_argument("domain")
    p.set_defaults(func=cmd_dns)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except ConfigError as exc:
        print(f"pillarbox: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    func: Callable[[Config, argparse.Namespace], int] = args.func
    try:
        return func(config, args)
    except ConfigError as exc:
        print(f"pillarbox: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (AccountError, CliError, QueueEntryGone, ServiceError) as exc:
        print(f"pillarbox: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except StoreError as exc:
        print(f"pillarbox: store error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"pillarbox: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
