"""PostgreSQL for the tests: one fresh database per test, cloned from a template.

The server is `PILLARBOX_TEST_PG` (default: postgresql://postgres@127.0.0.1:5432/test,
trust auth, as on CI machines). The template `pb_tmpl_<digest of the migrations>` is
built once per schema (under a file lock, so xdist workers build it once between them);
each test gets `CREATE DATABASE t_<digest of its key> TEMPLATE ...`, which also keeps
NOTIFY channels apart between tests, and the databases a worker created are dropped
when it finishes (`drop_created`, called from tests/conftest.py).

Without a reachable server the PostgreSQL tests are skipped with a message that says
how to enable them; with `PILLARBOX_REQUIRE_PG=1` (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pillarbox.store.postgres import schema

T = TypeVar("T")

ADMIN_DSN = os.environ.get("PILLARBOX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("PILLARBOX_REQUIRE_PG", "") == "1"
SKIP_MESSAGE = (
    "PostgreSQL tests skipped: no server at {dsn} ({error}). Start PostgreSQL 15 with "
    "trust auth on 127.0.0.1:5432, or set PILLARBOX_TEST_PG to a DSN whose user may "
    "CREATE DATABASE; .ci/run sets PILLARBOX_REQUIRE_PG=1 to make this a failure."
)

_created: list[str] = []
_threads = ThreadPoolExecutor(1, thread_name_prefix="test-pg")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop (callers may be inside one)."""
    return _threads.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def dsn_for(database: str) -> str:
    """The admin DSN with its database replaced."""
    parts = urlsplit(ADMIN_DSN)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@cache
def _unreachable() -> str:
    """ "" when the server answers, else why not."""

    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
        await conn.close()

    try:
        _run(probe)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def require() -> None:
    """Skip (or, on CI, fail) the calling test when PostgreSQL is not reachable."""
    error = _unreachable()
    if error:
        message = SKIP_MESSAGE.format(dsn=ADMIN_DSN, error=error)
        if REQUIRED:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def template() -> str:
    """The name of the migrated template database (built once per schema)."""
    name = "pb_tmpl_" + _digest("".join(sql for _, sql in schema.migrations()))
    lock = Path(tempfile.gettempdir()) / f"{name}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)

        async def build() -> None:
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    return
                await admin.execute(f'CREATE DATABASE "{name}_new"')
            finally:
                await admin.close()
            conn = await asyncpg.connect(dsn_for(name + "_new"))
            try:
                await schema.migrate(conn)
            finally:
                await conn.close()
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                await admin.execute(f'ALTER DATABASE "{name}_new" RENAME TO "{name}"')
            finally:
                await admin.close()

        _run(build)
    return name


def database(key: str) -> str:
    """The DSN of a fresh migrated database for `key` (a test's data directory); the
    same key gives the same database (a store closed and opened again)."""
    require()
    name = "t_" + _digest(key + str(os.getpid()))
    if name not in _created:
        tmpl = template()

        async def create() -> None:
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"')
            finally:
                await admin.close()

        _run(create)
        _created.append(name)
    return dsn_for(name)


def empty_database(key: str) -> str:
    """The DSN of a fresh database with no schema at all (migration tests)."""
    require()
    name = "e_" + _digest(key + str(os.getpid()))

    async def create() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    _run(create)
    _created.append(name)
    return dsn_for(name)


def drop_created() -> None:
    """Drop the databases this process created (end of a test session)."""
    if not _created or _unreachable():
        return

    async def drop() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            for name in _created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    _run(drop)
    _created.clear()


def _name_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def cut_off(dsn: str) -> None:
    """Take database `dsn` away from its clients as a server restart does: refuse new
    connections to it and end every open one (a node sees 57P01 admin shutdown, then
    connection refusals). Only that database: other tests' databases keep running."""
    name = _name_of(dsn)

    async def cut() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
        finally:
            await admin.close()

    _run(cut)


def restore(dsn: str) -> None:
    """Let clients connect to `dsn` again (the end of `cut_off`)."""
    name = _name_of(dsn)

    async def allow() -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()

    _run(allow)
