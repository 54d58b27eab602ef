"""Crash safety of the SQLite store: SIGKILL at random points never loses an
acknowledged delivery and never exposes a half-written one.

A child process (crash_child.py) delivers in a loop and reports "uid sha256" after each
append returns. We kill it with SIGKILL 20 times at random points (after a random number
of reported deliveries, so the kill lands anywhere inside the next one: while the file
is written, fsynced, renamed, or while the row commits) and restart each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

from pillarbox.store.sqlite import SqliteStore

CHILD = Path(__file__).with_name("crash_child.py")
ROUNDS = 20
LINE_TIMEOUT = 30.0


async def _run_child(data_dir: Path, seed: int, deliveries: int) -> dict[int, str]:
    """Start the child, read `deliveries` reports (0: kill during start-up), SIGKILL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(data_dir),
        str(seed),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    reported: dict[int, str] = {}
    try:
        if deliveries:
            line = await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)
            assert line == b"ready\n", line
        while len(reported) < deliveries:
            line = await asyncio.wait_for(proc.stdout.readline(), LINE_TIMEOUT)
            assert line, "child exited early"
            uid, digest = line.decode().split()
            reported[int(uid)] = digest
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
        # Reports that were already in the pipe when the kill landed were committed too.
        rest = await proc.stdout.read()
        for line in rest.decode().splitlines():
            parts = line.split()
            if len(parts) == 2:
                reported[int(parts[0])] = parts[1]
    return reported


def _check_files(data_dir: Path) -> None:
    """Every blob row has its file; every file has its row; no temp file remains."""
    blob_root = data_dir / "blobs"
    assert list((blob_root / "tmp").iterdir()) == []
    conn = sqlite3.connect(data_dir / "pillarbox.db")
    try:
        rows = {r[0] for r in conn.execute("SELECT id FROM blobs")}
    finally:
        conn.close()
    files = {int(p.name, 16) for d in blob_root.iterdir() if d.name != "tmp" for p in d.iterdir()}
    assert files == rows


async def test_sigkill_loop(tmp_path: Path) -> None:
    """After every SIGKILL the store opens cleanly, every reported delivery reads back
    byte for byte, UIDs keep rising, and no unreferenced or temporary file survives."""
    rng = random.Random(1234)
    data_dir = tmp_path / "data"
    committed: dict[int, str] = {}
    for round_no in range(ROUNDS):
        deliveries = 0 if round_no in (0, 7) else rng.randrange(1, 8)
        reported = await _run_child(data_dir, rng.randrange(1 << 30), deliveries)
        if committed and reported:
            assert min(reported) > max(committed), "a UID was reused after a crash"
        committed.update(reported)

        store = SqliteStore(data_dir)
        await store.open()
        try:
            account = await store.get_account("crash@example.org")
            if account is None:
                assert not committed
                continue
            inbox = await store.get_mailbox(account.id, "INBOX")
            assert inbox is not None
            uids = await store.uids(inbox.id)
            assert set(committed) <= set(uids)
            for uid in uids:  # reported or not, every visible row is whole
                data = await store.read_message(inbox.id, uid)
                if committed.get(uid):
                    assert hashlib.sha256(data).hexdigest() == committed[uid]
            infos = await store.fetch(inbox.id, uids)
            sizes = [len(await store.read_blob(i.blob_id)) for i in infos]
            assert [i.size for i in infos] == sizes
            for uid in uids:
                committed.setdefault(uid, "")  # committed but unreported: still never reused
        finally:
            await store.close()
        _check_files(data_dir)
    assert len([d for d in committed.values() if d]) >= ROUNDS
