"""A second process on the data directory of tests/store/sqlite/test_cluster_processes.py:
opens a SqliteStore there (as a worker does: no orphan collection) and answers one
command per line on stdin with one line on stdout.

Commands: ``lock <account> <holder>`` (a lease of two minutes: True/False),
``unlock <account> <holder>``, ``failures <key>`` (the record's count, 0 if none),
``session <id hash>`` (the session's account id, or None).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.sqlite import SqliteStore


async def main(data_dir: Path) -> None:
    store = SqliteStore(data_dir, bus=InProcessChangeBus(), collect_orphans=False, node_id="w1")
    await store.open()
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            op, *args = line.split()
            answer: object = "ok"
            if op == "lock":
                answer = await store.lock_maildrop(int(args[0]), args[1], time.time() + 120)
            elif op == "unlock":
                await store.unlock_maildrop(int(args[0]), args[1])
            elif op == "failures":
                state = await store.update_login_state(args[0], lambda s: (s, s))
                answer = state.failures if state is not None else 0
            elif op == "session":
                record = await store.get_web_session(args[0])
                answer = record.account_id if record is not None else None
            print(answer, flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
