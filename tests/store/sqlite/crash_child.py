"""Helper process for test_crash.py (not a test): delivers messages in a loop.

Usage: python crash_child.py DATA_DIR SEED. Opens the SQLite store, makes sure the
account exists, then appends random messages forever, printing "uid sha256" after each
`append` has returned (that is, after the commit). The parent kills it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import sys
from pathlib import Path

from pillarbox.model import MessageMeta
from pillarbox.store.errors import AlreadyExists
from pillarbox.store.sqlite import SqliteStore


async def main(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = SqliteStore(data_dir)
    await store.open()
    with contextlib.suppress(AlreadyExists):
        await store.add_domain("example.org")
    account = await store.get_account("crash@example.org")
    if account is None:
        account = await store.add_account("crash@example.org", "h")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    print("ready", flush=True)
    while True:
        data = rng.randbytes(rng.randrange(1, 200_000))
        writer = store.new_blob()
        for start in range(0, len(data), 65536):
            await writer.write(data[start : start + 65536])
        blob = await writer.finish()
        meta = MessageMeta(
            size=len(data), envelope=b"NIL", bodystructure=b"NIL", body=b"NIL", parts="{}"
        )
        result = await store.append(inbox.id, blob, meta)
        print(result.uid, hashlib.sha256(data).hexdigest(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
