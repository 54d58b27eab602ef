"""A store-level loop of SMTP delivery (not a test; run by hand, prints JSON).

    PYTHONPATH=src .venv/bin/python -m tests.store.sqlite.bench_deliver [CLIENTS] [SECONDS]

Why: smtp_ingest's figures mix SMTP and MIME parsing with the store; this drives a real
`SqliteStore` the way a delivery does (write the file, `finish`, `deliver` to one
INBOX) from CLIENTS concurrent tasks of ~24 KB messages and reports p50/p99 of `finish`,
of `deliver` and of the two together, which is what a 250 waits for in the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pillarbox.services.delivery import StoreDelivery
from pillarbox.store.sqlite import SqliteStore
from tests.store.conftest import dummy_meta, write_blob

BODY = ("The quick brown fox jumps over the lazy dog, now and then. " * 400).encode()


async def client(
    store: SqliteStore, box: int, stop: float, times: dict[str, list[float]], loops: list[int]
) -> None:
    i = 0
    while time.perf_counter() < stop:
        data = b"Subject: loop %d\r\nFrom: a@example.org\r\n\r\n" % i + BODY
        meta = dummy_meta(data, text=BODY.decode())
        t0 = time.perf_counter()
        blob = await write_blob(store, data)
        t1 = time.perf_counter()
        await store.deliver([StoreDelivery(box, blob, meta)])
        t2 = time.perf_counter()
        times["finish"].append(t1 - t0)
        times["deliver"].append(t2 - t1)
        times["total"].append(t2 - t0)
        i += 1
    loops.append(i)


async def main(root: Path, clients: int, seconds: float) -> None:
    store = SqliteStore(root / "data")
    await store.open()
    try:
        await store.add_domain("example.org")
        boxes = []
        for i in range(clients):
            acct = await store.add_account(f"u{i}@example.org", "h")
            boxes.append((await store.get_mailbox(acct.id, "INBOX")).id)
        times: dict[str, list[float]] = {k: [] for k in ("finish", "deliver", "total")}
        loops: list[int] = []
        w0 = store.writer_stats
        start = time.perf_counter()
        await asyncio.gather(*(client(store, b, start + seconds, times, loops) for b in boxes))
        wall = time.perf_counter() - start
        w1 = store.writer_stats
    finally:
        await store.close()
    n = sum(loops)
    result: dict[str, object] = {"clients": clients, "deliveries": n, "per_s": n / wall}
    for k, v in times.items():
        v.sort()
        result[f"{k}_p50_ms"] = statistics.median(v) * 1000
        result[f"{k}_p99_ms"] = v[int(len(v) * 0.99)] * 1000
    result["ops_per_commit"] = (w1[1] - w0[1]) / max(1, w1[0] - w0[0])
    result["load1"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    n_clients = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with tempfile.TemporaryDirectory(dir="/work/tmp" if Path("/work/tmp").is_dir() else None) as t:
        asyncio.run(main(Path(t), n_clients, secs))
