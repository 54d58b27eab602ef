"""The state the worker processes share, with two SqliteStore instances in two
processes on one data directory (as `[server] workers = 2` runs them).

Pins: a POP3 maildrop lock taken in one process refuses the other until released; a
login failure counted in one is seen by the other; a webmail session made in one is
valid in the other and ends in both.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.sqlite import SqliteStore

CHILD = Path(__file__).with_name("cluster_child.py")
LINE_TIMEOUT = 30.0


class Other:
    """The other process, one command at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
        assert raw, "the other process ended"
        return raw.decode().strip()

    async def __call__(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.line()


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Other]]:
    data = tmp_path / "data"
    store = SqliteStore(data, bus=InProcessChangeBus(), node_id="w0")
    await store.open()  # first, as the master does: the schema is migrated once
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(data),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    other = Other(proc)
    try:
        assert await other.line() == "ready"
        yield store, other
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), LINE_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await store.close()


async def test_a_maildrop_lock_in_one_process_refuses_the_other(
    two: tuple[SqliteStore, Other],
) -> None:
    store, other = two
    assert await store.lock_maildrop(7, "w0:1", time.time() + 120)
    assert await other("lock 7 w1:1") == "False"  # POP3 would say -ERR [IN-USE]
    assert await other("lock 8 w1:1") == "True"  # another maildrop
    assert not await store.lock_maildrop(8, "w0:2", time.time() + 120)
    await store.unlock_maildrop(7, "w0:1")
    assert await other("lock 7 w1:1") == "True"
    assert not await store.lock_maildrop(7, "w0:1", time.time() + 120)
    assert await other("unlock 7 w1:1") == "ok"
    assert await store.lock_maildrop(7, "w0:1", time.time() + 120)


async def test_login_failures_and_web_sessions_are_seen_by_both(
    two: tuple[SqliteStore, Other],
) -> None:
    store, other = two
    assert await other("failures ip:192.0.2.1") == "0"
    await store.update_login_state("ip:192.0.2.1", lambda s: (LoginState(failures=3), None))
    assert await other("failures ip:192.0.2.1") == "3"
    await store.add_domain("example.org")
    account = await store.add_account("alice@example.org", "$argon2id$dummy")
    now = time.time()
    await store.add_web_session(WebSessionRecord("h1", account.id, "c", now, now))
    assert await other("session h1") == str(account.id)
    await store.remove_web_session("h1")
    assert await other("session h1") == "None"
