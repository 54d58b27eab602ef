"""A store-level loop of imap_mixed's writes (not a test; run by hand, prints JSON).

    PYTHONPATH=src .venv/bin/python -m tests.store.sqlite.bench_writer_mixed [CLIENTS] [SECONDS]

Why: the IMAP figures of `python -m bench` mix the protocol's cost with the writer's;
this drives a real `SqliteStore` the way imap_mixed's clients drive it (each client in
its own mailbox: APPEND, STORE +FLAGS \\Seen, STORE +FLAGS \\Deleted, EXPUNGE, in a
loop) and reports each operation's p50/p99 latency, and the CPU time per loop of the
whole process and of the store's threads (writer, text index), from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from pillarbox.model import FlagMode
from pillarbox.store.sqlite import SqliteStore
from tests.store.conftest import dummy_meta, write_blob

BODY = ("The quick brown fox jumps over the lazy dog, now and then. " * 40).encode()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name of this process (summed over threads of one name)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "main" if int(tid) == os.getpid() else "other")
        name = name.split("_")[0] if name.startswith("pillarbox-blob") else name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


async def client(
    store: SqliteStore, box: int, stop: float, times: dict[str, list[float]], loops: list[int]
) -> None:
    i = 0
    while time.perf_counter() < stop:
        data = b"Subject: loop %d\r\nFrom: a@example.org\r\n\r\n" % i + BODY
        t0 = time.perf_counter()
        blob = await write_blob(store, data)
        res = await store.append(box, blob, dummy_meta(data, text=BODY.decode()))
        t1 = time.perf_counter()
        await store.set_flags(box, [res.uid], frozenset({"\\Seen"}), FlagMode.ADD)
        t2 = time.perf_counter()
        await store.set_flags(box, [res.uid], frozenset({"\\Deleted"}), FlagMode.ADD)
        t3 = time.perf_counter()
        await store.expunge(box)
        t4 = time.perf_counter()
        times["append"].append(t1 - t0)
        times["store"].append(t2 - t1)
        times["mark_deleted"].append(t3 - t2)
        times["expunge"].append(t4 - t3)
        i += 1
    loops.append(i)


async def main(root: Path, clients: int, seconds: float) -> None:
    store = SqliteStore(root / "data")
    await store.open()
    try:
        await store.add_domain("example.org")
        acct = await store.add_account("bench@example.org", "h")
        boxes = [(await store.create_mailbox(acct.id, f"B{i}")).id for i in range(clients)]
        times: dict[str, list[float]] = {k: [] for k in ("append", "store", "mark_deleted")}
        times["expunge"] = []
        loops: list[int] = []
        cpu0, thr0, w0 = time.process_time(), _thread_cpu(), store.writer_stats
        start = time.perf_counter()
        await asyncio.gather(*(client(store, b, start + seconds, times, loops) for b in boxes))
        wall = time.perf_counter() - start
        cpu1, thr1, w1 = time.process_time(), _thread_cpu(), store.writer_stats
    finally:
        await store.close()
    n = sum(loops)
    result: dict[str, object] = {"clients": clients, "loops": n, "loops_per_s": n / wall}
    for k, v in times.items():
        v.sort()
        result[f"{k}_p50_ms"] = statistics.median(v) * 1000
        result[f"{k}_p99_ms"] = v[int(len(v) * 0.99)] * 1000
    result["cpu_ms_per_loop"] = (cpu1 - cpu0) / n * 1000
    for name in sorted(thr1):
        spent = thr1[name] - thr0.get(name, 0.0)
        if spent > 0:
            result[f"cpu_ms_per_loop[{name}]"] = spent / n * 1000
    result["ops_per_commit"] = (w1[1] - w0[1]) / max(1, w1[0] - w0[0])
    result["load1"] = os.getloadavg()[0]
    print(
        json.dumps(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}, indent=1
        )
    )


if __name__ == "__main__":
    n_clients = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with tempfile.TemporaryDirectory(dir="/work/tmp" if Path("/work/tmp").is_dir() else None) as t:
        asyncio.run(main(Path(t), n_clients, secs))
