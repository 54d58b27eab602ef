"""Measurements of the SQLite store (not a test; run by hand, prints JSON).

    .venv/bin/python -m tests.store.sqlite.bench_sqlite [DIR]

Deliveries/s sequential (one at a time: one commit each) versus concurrent (group
commit), FLAGS of a 100,000-message mailbox, STORE on 1,000 messages, SEARCH TEXT.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from pillarbox.model import FlagMode, SearchText
from pillarbox.store.sqlite import SqliteStore
from tests.store.conftest import dummy_meta, write_blob


async def deliveries(store: SqliteStore, box: int, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            data = b"Subject: bench\r\n\r\n" + f"message {i} ".encode() * 200
            blob = await write_blob(store, data)
            await store.append(box, blob, dummy_meta(data, text=f"message {i} body"))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def main(root: Path) -> None:
    store = SqliteStore(root / "data")
    await store.open()
    result: dict[str, float] = {}
    try:
        await store.add_domain("example.org")
        acct = await store.add_account("bench@example.org", "h")
        inbox = await store.get_mailbox(acct.id, "INBOX")
        big = await store.create_mailbox(acct.id, "Big")
        assert inbox is not None
        c0, o0 = store.writer_stats
        result["deliveries_per_s_sequential"] = await deliveries(store, inbox.id, 300, 1)
        c1, o1 = store.writer_stats
        result["deliveries_per_s_concurrent_100"] = await deliveries(store, inbox.id, 3000, 100)
        c2, o2 = store.writer_stats
        result["ops_per_commit_sequential"] = (o1 - o0) / (c1 - c0)
        result["ops_per_commit_concurrent"] = (o2 - o1) / (c2 - c1)

        # a 100,000-message mailbox (one shared blob: this measures the rows)
        blob = await write_blob(store, b"x" * 2000)
        meta = dummy_meta(b"x" * 2000, text="shared body text with a needle")
        start = time.perf_counter()
        for chunk in range(10):
            await asyncio.gather(*(store.append(big.id, blob, meta) for _ in range(10_000)))
            del chunk
        result["append_rows_per_s_shared_blob"] = 100_000 / (time.perf_counter() - start)
        uids = await store.uids(big.id)
        start = time.perf_counter()
        rows = await store.fetch_flags(big.id, uids)
        result["fetch_flags_100k_ms"] = (time.perf_counter() - start) * 1000
        assert len(rows) == 100_000
        start = time.perf_counter()
        await store.fetch(big.id, uids[:1000])
        result["fetch_1000_ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        await store.set_flags(big.id, uids[5000:6000], frozenset({"\\Seen", "$X"}), FlagMode.ADD)
        result["store_1000_ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        found = await store.search(inbox.id, SearchText("message 2999 body"))
        result["search_text_3300_msgs_ms"] = (time.perf_counter() - start) * 1000
        assert len(found) == 1
        start = time.perf_counter()
        await store.mailbox_status(big.id)
        result["status_100k_ms"] = (time.perf_counter() - start) * 1000
    finally:
        await store.close()
    print(json.dumps({k: round(v, 1) for k, v in result.items()}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(main(Path(sys.argv[1])))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(Path(tmp)))
