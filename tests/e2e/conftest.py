"""A real Pillarbox on 127.0.0.1 ephemeral ports, in a temporary data directory.

The server runs in its own thread with its own event loop, so tests can drive it with
blocking clients (smtplib, imaplib, poplib, curl, swaks, mbsync) exactly as users do.
Accounts: alice@example.test and bob@example.test (password `PASSWORD`), domain
example.test, and other.test with carol@other.test.

The store is SQLite unless the module is marked `both_backends`: its tests then run
once on SQLite and once on PostgreSQL (a fresh database each, tests/pg.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pillarbox.app import App, with_ports_zero
from pillarbox.config import Config, DnsConfig, ServerConfig, StoreConfig
from pillarbox.eventloop import new_event_loop
from pillarbox.services.auth import hash_password
from tests import pg

PASSWORD = "correct horse battery"
T = TypeVar("T")


class RunningServer:
    """Handle on a server running in a background thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = new_event_loop()  # the loop `pillarbox serve` uses (uvloop)
        self.app = App(config)
        self._thread = threading.Thread(target=self._run, name="pillarbox-e2e", daemon=True)
        self._started: Future[None] = Future()
        self._stopped = asyncio.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _main(self) -> None:
        try:
            await self.app.start()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        await self._stopped.wait()
        await self.app.stop()

    def start(self) -> None:
        self._thread.start()
        self._started.result(timeout=60)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=60)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        """Run a coroutine on the server's loop (e.g. to read the store) and wait for it."""

        async def runner() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(runner(), self.loop).result(timeout)

    def port(self, listener: str) -> int:
        return self.app.address(listener)[1]

    @property
    def services(self) -> Any:
        return self.app.services

    @property
    def store(self) -> Any:
        return self.app.store


# Tests talk only to this machine: the outbound queue's look-ups go to a port where no
# DNS server listens (refused at once, so a queued remote message is simply deferred)
# unless a test points `dns.nameservers` at its own server (tests/dnsserver.py).
NO_DNS = DnsConfig(nameservers=["127.0.0.1:9"], timeout=1.0)


def make_config(tmp_path: Path, *, backend: str = "sqlite", **overrides: Any) -> Config:
    """A server's config in `tmp_path`; `backend` "postgres" gives it a fresh database."""
    server = ServerConfig(hostname="mail.example.test", data_dir=str(tmp_path / "var"))
    store = StoreConfig()
    if backend == "postgres":
        server = dataclasses.replace(server, store="postgres", node_id=f"node-{tmp_path.name}")
        store = StoreConfig(dsn=pg.database(str(tmp_path)), pool_min=1, pool_max=10)
    config = Config(server=server, store=store, dns=NO_DNS)
    for section, values in overrides.items():
        config = dataclasses.replace(
            config, **{section: dataclasses.replace(getattr(config, section), **values)}
        )
    return with_ports_zero(config)


@functools.cache
def password_hash() -> str:
    """One argon2id hash of PASSWORD per test run: hashing is the slow part of set-up."""
    return hash_password(PASSWORD)


def provision(server: RunningServer) -> None:
    accounts = server.services.accounts
    store = server.store
    hashed = password_hash()

    async def setup() -> None:
        await accounts.add_domain("example.test")
        await accounts.add_domain("other.test")
        for user in ("alice@example.test", "bob@example.test", "carol@other.test"):
            await store.add_account(user, hashed)

    server.call(setup)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules marked `both_backends` run each test on SQLite and on PostgreSQL."""
    if "e2e_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_backends"
    ):
        metafunc.parametrize("e2e_backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def e2e_backend(request: pytest.FixtureRequest) -> str:
    """The store backend of this test's servers ("sqlite" unless parametrised)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def server_factory(tmp_path: Path, e2e_backend: str) -> Iterator[Callable[..., RunningServer]]:
    """Start servers with config overrides: server_factory(smtp={"max_recipients": 5})."""
    started: list[RunningServer] = []

    def factory(**overrides: Any) -> RunningServer:
        config = make_config(tmp_path / f"s{len(started)}", backend=e2e_backend, **overrides)
        srv = RunningServer(config)
        srv.start()
        started.append(srv)
        provision(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A started, provisioned server with default settings."""
    return server_factory()


def trickle_until_dropped(send: Callable[[bytes], None], byte: bytes) -> float:
    """A slow-loris client: one byte every 0.2 s (never a whole command) until the
    server closes the connection; returns the seconds that took. pytest fails the
    caller if the server never closes within 50 bytes (10 s)."""
    started = time.monotonic()
    with pytest.raises(OSError):
        for _ in range(50):
            send(byte)
            time.sleep(0.2)  # the client's pace, not a wait for a condition
    return time.monotonic() - started
