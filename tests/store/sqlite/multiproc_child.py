"""Helper process for test_multiprocess.py (not a test): one "worker" appending.

Usage: python multiproc_child.py DATA_DIR TAG COUNT. Opens the SQLite store on DATA_DIR
as a worker would (collect_orphans=False) with a fake `StampingBus`, appends COUNT
messages to crash@example.org's INBOX (the parent made the account), and prints one
line per append ("uid N") after it returned, then "published P" (how many changes went
through `publish_stamped`) and exits.

The fake bus numbers stamps from a counter file beside the store, read and rewritten
in `stamp`: that is only safe because the writer calls `stamp` under the store's
cross-process write lock, which is what the test checks. Each stamp is appended to
``stamps.log`` with the UIDs it numbers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pillarbox.model import Change, MessageMeta, MessagesAdded
from pillarbox.store.api import StampingBus
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.sqlite import SqliteStore


class FileStampingBus(InProcessChangeBus):
    """A `StampingBus` whose counter is a file (no lock of its own: the store's)."""

    def __init__(self, data_dir: Path, tag: str) -> None:
        super().__init__()
        self._counter = data_dir / "stamp.counter"
        self._log = data_dir / "stamps.log"
        self._tag = tag
        self.published = 0

    def stamp(self, changes: Sequence[Change]) -> int:
        try:
            last = int(self._counter.read_text() or "0")
        except FileNotFoundError:
            last = 0
        stamp = last + 1
        self._counter.write_text(str(stamp))
        uids = [r.uid for c in changes if isinstance(c, MessagesAdded) for r in c.rows]
        line = f"{stamp} {self._tag} {' '.join(map(str, uids))}\n".encode()
        fd = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return stamp

    def publish_stamped(self, stamp: int, changes: Iterable[Change]) -> None:
        self.published += 1
        self.publish(changes)


async def main(data_dir: Path, tag: str, count: int) -> None:
    bus = FileStampingBus(data_dir, tag)
    assert isinstance(bus, StampingBus)
    store = SqliteStore(data_dir, bus=bus, collect_orphans=False)
    await store.open()
    try:
        account = await store.get_account("crash@example.org")
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        print("ready", flush=True)
        sys.stdin.readline()  # the parent starts every child at once

        async def one(i: int) -> None:
            data = f"Subject: {tag} {i}\r\n\r\nbody {tag} {i}\r\n".encode()
            writer = store.new_blob()
            await writer.write(data)
            blob = await writer.finish()
            meta = MessageMeta(
                size=len(data), envelope=b"NIL", bodystructure=b"NIL", body=b"NIL", parts="{}"
            )
            result = await store.append(inbox.id, blob, meta)
            print("uid", result.uid, flush=True)

        # A few at a time, so batches of several operations commit too.
        for start in range(0, count, 4):
            await asyncio.gather(*(one(i) for i in range(start, min(count, start + 4))))
    finally:
        await store.close()
    print("published", bus.published, flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
