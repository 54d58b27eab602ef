"""Several processes writing one SQLite data directory (`[server] workers` > 1).

Real processes (`multiproc_child.py`), each with its own `SqliteStore` on the same
directory, append to one mailbox at the same time. What must hold: every acknowledged
message is there once, UIDs are unique and ascend in each process's order of
acknowledgement, and the stamps a `StampingBus` gives (under the store's cross-process
write lock, after COMMIT) follow the one commit order of all processes: sorted by
stamp, the UIDs ascend.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from pillarbox.store.sqlite import SqliteStore

CHILD = Path(__file__).with_name("multiproc_child.py")
COUNT = 60
TIMEOUT = 120.0


async def _prepare(data_dir: Path) -> None:
    store = SqliteStore(data_dir)
    await store.open()
    try:
        await store.add_domain("example.org")
        await store.add_account("crash@example.org", "h")
    finally:
        await store.close()


async def _run_children(data_dir: Path, tags: list[str]) -> dict[str, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            str(data_dir),
            tag,
            str(COUNT),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for tag in tags
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
            assert line == b"ready\n", line
        for proc in procs:  # all open: go
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate() for proc in procs)), TIMEOUT
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    for proc in procs:
        assert proc.returncode == 0
    return {tag: out.decode().split("\n") for tag, (out, _) in zip(tags, outputs, strict=True)}


async def test_two_processes_append_to_one_mailbox(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await _prepare(data_dir)
    lines = await _run_children(data_dir, ["a", "b"])

    acknowledged: dict[str, list[int]] = {}
    for tag, out in lines.items():
        acknowledged[tag] = [int(x.split()[1]) for x in out if x.startswith("uid ")]
        # Every append's change went through publish_stamped (the bus was stamping).
        assert f"published {COUNT}" in out
    everything = acknowledged["a"] + acknowledged["b"]
    assert len(everything) == 2 * COUNT
    assert len(set(everything)) == 2 * COUNT  # unique UIDs across the processes

    # Stamps: 1..n without gaps or repeats, and in stamp order the UIDs ascend, so the
    # stamps follow the commit order of both processes.
    entries = [line.split() for line in (data_dir / "stamps.log").read_text().splitlines() if line]
    stamps = [int(e[0]) for e in entries]
    assert sorted(stamps) == list(range(1, len(stamps) + 1))
    by_stamp = sorted(entries, key=lambda e: int(e[0]))
    uids_in_stamp_order = [int(u) for e in by_stamp for u in e[2:]]
    assert uids_in_stamp_order == sorted(uids_in_stamp_order)
    assert sorted(uids_in_stamp_order) == sorted(everything)
    assert {e[1] for e in entries} == {"a", "b"}  # both processes committed

    # Nothing lost: what the mailbox holds is exactly what was acknowledged.
    store = SqliteStore(data_dir)
    await store.open()
    try:
        account = await store.get_account("crash@example.org")
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        assert await store.uids(inbox.id) == sorted(everything)
        assert inbox.uidnext == max(everything) + 1
    finally:
        await store.close()
