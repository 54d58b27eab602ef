"""Composition root: open the store, build the services, start every listener.

Nothing imports this module; `cli.py` runs it and the end-to-end tests start it on
ephemeral ports. Each mail front-end module exposes `make_handler(listener, services,
config)` returning the coroutine the shared listener runs per connection. The `http`
listener is the webmail (`web/`): an ASGI app that `web.listener` serves with Hypercorn
on this same event loop, started after the mail listeners and stopped before them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pillarbox.backends import backend_name, open_store
from pillarbox.config import Config, check_data_dir
from pillarbox.fetcher.runner import FetcherSettings, SourceRunner
from pillarbox.fetcher.scheduler import FetchScheduler, ScheduleSettings
from pillarbox.queue.runner import QueueRunner
from pillarbox.server import imap as imap_frontend
from pillarbox.server import pop3 as pop3_frontend
from pillarbox.server import smtp as smtp_frontend
from pillarbox.server.listener import (
    ConnectionCaps,
    Handler,
    Listener,
    ListenerLimits,
    start_listener,
)
from pillarbox.server.preauth import PreauthLimits
from pillarbox.server.tls import ensure_self_signed, server_context
from pillarbox.services.account_throttle import AccountThrottle
from pillarbox.services.accounts import AccountService
from pillarbox.services.auth import AuthService
from pillarbox.services.context import Services
from pillarbox.services.fetch_now import FetchOutcome, RunSource
from pillarbox.store.api import ChangeBus, Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.postgres import PgStore
from pillarbox.store.postgres.bus import LocalOrder, PgChangeRelay
from pillarbox.web.listener import WebListener, start_web
from pillarbox.workers.shared import WorkerShared

if TYPE_CHECKING:
    from pillarbox.workers.worker import WorkerLink

log = logging.getLogger("pillarbox.app")

MakeHandler = Callable[[str, Services, Config], Handler]
_SMTP_BUSY = b"421 4.7.0 Too many connections, try again later\r\n"
_IMAP_BUSY = b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
_POP3_BUSY = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"

# listener name -> (front-end factory, implicit TLS, reply when over the connection limit)
# IMAP and POP3 listeners close connections that do not log in in time, or to make room
# (server/preauth.py): what each says first.
_IMAP_PREAUTH = (b"* BYE Login timeout\r\n", b"* BYE [UNAVAILABLE] Too many connections\r\n")
_POP3_PREAUTH = (b"-ERR Login timeout\r\n", b"-ERR [SYS/TEMP] Too many connections\r\n")
PREAUTH_REPLIES: dict[str, tuple[bytes, bytes]] = {
    "imap": _IMAP_PREAUTH,
    "imaps": _IMAP_PREAUTH,
    "pop3": _POP3_PREAUTH,
    "pop3s": _POP3_PREAUTH,
}


def preauth_replies(name: str, hostname: str) -> tuple[bytes, bytes] | None:
    """What a listener's pre-login gate says when it closes a connection; None for a
    listener without one. Submission has it too (every client must AUTH first); MX
    (`smtp`) and LMTP never authenticate and keep their RFC 5321 timeouts. A 421 names
    the server (RFC 5321 §3.8, §4.2.5 reply-line with domain)."""
    if name in ("submission", "submissions"):
        host = hostname.encode("ascii", "replace")
        return (
            b"421 4.4.2 " + host + b" Login timeout, closing connection\r\n",
            b"421 4.7.0 " + host + b" Too many connections, closing connection\r\n",
        )
    return PREAUTH_REPLIES.get(name)


LISTENERS: dict[str, tuple[MakeHandler, bool, bytes]] = {
    "smtp": (smtp_frontend.make_handler, False, _SMTP_BUSY),
    "submission": (smtp_frontend.make_handler, False, _SMTP_BUSY),
    "submissions": (smtp_frontend.make_handler, True, _SMTP_BUSY),  # RFC 8314 §3.3
    "lmtp": (smtp_frontend.make_handler, False, _SMTP_BUSY),  # RFC 2033
    "imap": (imap_frontend.make_handler, False, _IMAP_BUSY),
    "imaps": (imap_frontend.make_handler, True, _IMAP_BUSY),
    "pop3": (pop3_frontend.make_handler, False, _POP3_BUSY),
    "pop3s": (pop3_frontend.make_handler, True, _POP3_BUSY),
}


def build_services(
    store: Store, config: Config, changes: ChangeBus, shared: WorkerShared | None = None
) -> Services:
    """The services; with several workers (`shared`), the sessions per account are
    counted, and verified credentials remembered, in the memory they share (under the
    key the master made, so a login verified in one worker is known to all)."""
    auth = config.auth
    return Services.build(
        store,
        changes=changes,
        hostname=config.server.hostname,
        auth=AuthService(
            store,
            fail_delay=auth.fail_delay,
            fail_delay_max=auth.fail_delay_max,
            fail_window=auth.fail_window,
            account_throttle=AccountThrottle(
                delay=auth.account_fail_delay,
                cap=auth.account_fail_delay_max,
                free=auth.account_fail_free,
                window=auth.fail_window,
            ),
            allow_plaintext=auth.allow_plaintext,
            allow_plaintext_loopback=auth.allow_plaintext_loopback,
            credential_ttl=auth.credential_cache_ttl,
            credentials=shared.credentials if shared is not None else None,
            credential_key=shared.credential_key if shared is not None else None,
        ),
        accounts=AccountService(store),
        config=config,
        session_counts=shared.account_sessions if shared is not None else None,
    )


def fetch_scheduler(services: Services, config: Config) -> FetchScheduler:
    """The scheduler of every account's fetch sources; this node claims them under its
    host name (one node per source, fetcher/scheduler.py)."""
    runner = SourceRunner(
        services.fetch_sources,
        services.fetch_delivery,
        FetcherSettings.from_config(config.fetcher),
    )
    return FetchScheduler(
        services.fetch_sources,
        runner,
        ScheduleSettings.from_config(config.fetcher),
        holder=config.node_name,
    )


def fetch_now(scheduler: FetchScheduler) -> RunSource:
    """The webmail's "fetch now" (`services.fetch_now`), run by the scheduler."""

    async def run(source_id: int) -> FetchOutcome:
        report = await scheduler.run_once(source_id)
        return FetchOutcome(report.fetched, report.summary(), report.error)

    return run


def tls_context(config: Config) -> ssl.SSLContext:
    if config.tls.cert:
        cert, key = Path(config.tls.cert), Path(config.tls.key)
    else:
        cert, key = ensure_self_signed(config.data_path / "tls", config.server.hostname)
    return server_context(cert, key)


class App:
    """A running Pillarbox: store, services and listeners.

    `worker`: this App is one of several worker processes (`[server] workers` > 1,
    workers/): it binds its ports beside its siblings (SO_REUSEPORT), leaves the store's
    clean-up at open to the master, and on SQLite publishes through the hub bus.
    `shared`: this worker's view of the memory the master shares with its workers
    (workers/shared.py), where the connection caps and sessions per account are
    counted; None for a single process."""

    def __init__(
        self,
        config: Config,
        *,
        shared: WorkerShared | None = None,
        worker: WorkerLink | None = None,
    ) -> None:
        self.config = config
        self.shared = shared
        self.worker = worker
        self.store: Store | None = None
        self.changes: ChangeBus | None = None
        self.services: Services | None = None
        self.listeners: dict[str, Listener] = {}
        self.web: WebListener | None = None  # the `http` listener, when enabled
        self.queue_runner: QueueRunner | None = None
        self.fetch_scheduler: FetchScheduler | None = None
        self.relay: PgChangeRelay | None = None  # other nodes' changes (PostgreSQL only)

    async def start(self) -> None:
        check_data_dir(self.config)
        changes = InProcessChangeBus()
        # Several nodes on PostgreSQL: the store publishes through `LocalOrder`, which
        # keeps this node's changes in MODSEQ order with the relay's (store/postgres/bus.py).
        order = LocalOrder(changes) if backend_name(self.config) == "postgres" else None
        bus: ChangeBus = order or changes
        if self.worker is not None:
            bus = self.worker.store_bus(bus)  # SQLite: the hub bus in front
        store = open_store(self.config, bus, server=True, collect=self.worker is None)
        await store.open()
        self.store, self.changes = store, changes
        if isinstance(store, PgStore):
            # Other nodes' changes reach this node's sessions through the relay, started
            # before any session can subscribe.
            relay = PgChangeRelay(store, changes, order=order)
            try:
                await relay.start()
            except BaseException:
                await self.stop()
                raise
            self.relay = relay
        self.services = build_services(store, self.config, changes, self.shared)
        ctx = tls_context(self.config)
        limits = ListenerLimits(
            max_connections=self.config.limits.max_connections,
            max_per_ip=self.config.limits.max_connections_per_ip,
            rate_per_ip=self.config.limits.connection_rate_per_ip,
        )
        try:
            for name, (make_handler, implicit, busy) in LISTENERS.items():
                address = getattr(self.config.listen, name)
                if not address:
                    continue
                handler = make_handler(name, self.services, self.config)
                replies = preauth_replies(name, self.config.server.hostname)
                preauth = None
                if replies is not None:
                    preauth = PreauthLimits(
                        limit=self.config.limits.max_unauthenticated,
                        timeout=self.config.limits.login_timeout,
                        timeout_reply=replies[0],
                        evicted_reply=replies[1],
                    )
                self.listeners[name] = await start_listener(
                    name,
                    address,
                    handler,
                    ssl_context=ctx,
                    implicit_tls=implicit,
                    limits=limits,
                    busy_reply=busy,
                    preauth=preauth,
                    caps=self._shared_caps(name, limits),
                    reuse_port=self.worker is not None,
                )
            if self.config.listen.http:
                self.web = await start_web(
                    self.services,
                    self.config,
                    self.config.listen.http,
                    reuse_port=self.worker is not None,
                )
            # After the listeners: a submission can only be queued once they are up, and
            # the runner sends what an earlier run left in the queue.
            self.queue_runner = QueueRunner(self.services, self.config)
            await self.queue_runner.start()
            self.fetch_scheduler = fetch_scheduler(self.services, self.config)
            await self.fetch_scheduler.start()
            self.services.fetch_now.register(
                fetch_now(self.fetch_scheduler), self.fetch_scheduler.wake
            )
        except BaseException:
            await self.stop()
            raise

    def _shared_caps(self, name: str, limits: ListenerLimits) -> ConnectionCaps | None:
        """The listener's caps counted for every worker, or None: in this process."""
        if self.shared is None:
            return None
        return self.shared.caps_for(
            name,
            max_connections=limits.max_connections,
            max_per_ip=limits.max_per_ip,
            rate_per_ip=limits.rate_per_ip,
        )

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.close()
            self.web = None
        for listener in self.listeners.values():
            await listener.close()
        self.listeners.clear()
        if self.fetch_scheduler is not None:
            if self.services is not None:
                self.services.fetch_now.unregister()
            await self.fetch_scheduler.stop()  # a run cut short has lost nothing
            self.fetch_scheduler = None
        if self.queue_runner is not None:
            await self.queue_runner.stop()  # sends in flight finish or keep their claim
            self.queue_runner = None
        if self.services is not None:
            await self.services.close()
            self.services = None
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self.changes is not None:
            self.changes.close()  # ends every session's subscription
            self.changes = None
        if self.worker is not None and self.worker.bus is not None:
            self.worker.bus.close()  # its hold timer

    def address(self, name: str) -> tuple[str, int]:
        if name == "http" and self.web is not None:
            return self.web.host, self.web.port
        listener = self.listeners[name]
        return listener.host, listener.port

    def addresses(self) -> dict[str, tuple[str, int]]:
        """Every listener's bound address, `http` (the webmail) included."""
        names = [*self.listeners, *(["http"] if self.web is not None else [])]
        return {name: self.address(name) for name in names}


# The cyclic garbage collector's young generation is collected every GC_THRESHOLD
# allocations (CPython's default: 700). A server holding thousands of sessions allocates
# a little per event per session, and each collection that reaches the older generations
# walks every live session object: a profile of 10,000 IDLE sessions showed 70% of the
# event loop in the collector. Sessions free almost everything by reference counting.
GC_THRESHOLD = (50_000, 20, 10)


def tune_garbage_collector() -> None:
    """Once the server has started: move everything alive (modules, configuration,
    the store's and listeners' objects) to the permanent generation, which collections
    never walk, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def serve(
    config: Config,
    ready: Callable[[App], None] | None = None,
    *,
    worker: WorkerLink | None = None,
) -> None:
    """Run until SIGINT/SIGTERM; a `worker` also stops when its master is gone."""
    app = App(config, worker=worker, shared=worker.shared if worker is not None else None)
    await app.start()
    tune_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)  # POSIX only, as is Pillarbox
    follow: asyncio.Task[None] | None = None
    if worker is not None:
        worker.ready(app.addresses())
        follow = asyncio.create_task(worker.follow(), name="master")

        def master_gone(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("following the master failed", exc_info=task.exception())
            if not stop.is_set():
                received.append("master gone")
                stop.set()

        follow.add_done_callback(master_gone)
    try:
        if ready is not None:
            ready(app)
        await stop.wait()
        # An operator reading the log should see the server stop, and why.
        log.info("shutting down (%s): closing listeners, finishing queued sends", received[0])
    finally:
        await app.stop()
        if follow is not None:
            follow.cancel()
        log.info("stopped")


def with_ports_zero(config: Config) -> Config:
    """A copy of config whose enabled listeners bind 127.0.0.1:0 (for tests)."""
    fields = {f.name: "127.0.0.1:0" for f in dataclasses.fields(config.listen)}
    return dataclasses.replace(config, listen=dataclasses.replace(config.listen, **fields))
