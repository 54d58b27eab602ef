"""Which store backend a configuration names, constructed (not yet opened).

Why a module of its own: the command line opens the store for nearly every command, and
importing it from `app` pulled in every front-end, the web listener and the fetcher
(0.6 s of the CLI's 0.9 s start-up) for a `domain list`. `app` and `cli` both use this.

Must not: open the store (callers do, on their loop), or import a front-end.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pillarbox.config import Config, ConfigError
from pillarbox.store.api import ChangeBus, Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.postgres import PgStore
from pillarbox.store.sqlite import SqliteStore


def _sqlite(config: Config, bus: ChangeBus, server: bool, collect: bool) -> Store:
    return SqliteStore(config.data_path, bus=bus, collect_orphans=collect, node_id=config.node_name)


def _postgres(config: Config, bus: ChangeBus, server: bool, collect: bool) -> Store:
    return PgStore(
        config.store_dsn,
        bus=bus,
        # The CLI beside running nodes is a node of its own to the relays: they must
        # pass its writes on to their sessions, not skip them as their own.
        node_id=config.node_name if server else f"{config.node_name}-cli-{os.getpid()}",
        pool_min=config.store.pool_min,
        pool_max=config.store.pool_max,
        statement_cache_size=config.store.statement_cache_size,
        server=server,
    )


# `server.store` → the backend that serves it ("sqlite", or a URL scheme). config.load
# already refused anything else; a new backend adds its entry here and its scheme there.
# `server`: False when the CLI opens the store, possibly beside a running server, so that
# it leaves the server's work in progress (blobs of messages being received) alone.
# `collect`: clean-up at open (SQLite's orphan blob files): the server's, but not a
# worker's (`[server] workers` > 1), whose siblings are receiving messages; the master
# opened the store once before starting them and did it then.
BACKENDS: dict[str, Callable[[Config, ChangeBus, bool, bool], Store]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


def backend_name(config: Config) -> str:
    store = config.server.store
    return "postgres" if config.store_dsn and store != "sqlite" else store


def open_store(
    config: Config,
    bus: ChangeBus | None = None,
    *,
    server: bool = False,
    collect: bool | None = None,
) -> Store:
    """The (unopened) backend named by `server.store`, publishing changes to `bus` (a new
    in-process bus if none: one process, as `serve` and the CLI run). `server`: this
    process runs the server (clean-up at open is its job, never the CLI's); `collect`:
    whether that clean-up runs (default: `server`; False in a worker)."""
    make = BACKENDS.get(backend_name(config))
    if make is None:
        raise ConfigError(f"server.store: no backend for {config.server.store!r}")
    bus = bus if bus is not None else InProcessChangeBus()
    return make(config, bus, server, server if collect is None else collect)
