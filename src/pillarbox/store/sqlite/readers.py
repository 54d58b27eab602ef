"""The reader threads of the SQLite backend.

Theory of operation: a small pool of threads, each with its own connection (search.db
attached, the search functions registered), takes jobs from one queue. Every job is a
function of the connection run in one read transaction; in WAL mode it works on a
snapshot and never waits for the writer. The result (or the error, mapped to
`store.errors`) goes back to the job's event loop with `call_soon_threadsafe`.

Must not: write (the writer owns every change), run on the event loop, or resolve a
future from its own thread (`resolve` runs on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pillarbox.store.sqlite import schema, search, text_index
from pillarbox.store.sqlite.errors import map_error

ReadJob = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]


class Readers:
    """Reader threads, each with its own connection; every job is one read transaction."""

    def __init__(self, db_path: Path, count: int) -> None:
        self._db_path = db_path  # search.db lies beside it and is attached too
        self.queue: queue.SimpleQueue[ReadJob | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"pillarbox-sqlite-reader-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        try:
            schema.configure(conn, writer=False)
            text_index.attach(conn, self._db_path.parent)
            search.register_functions(conn)
            while True:
                job = self.queue.get()
                if job is None:
                    return
                fn, future, loop = job
                result: Any = None
                error: BaseException | None = None
                try:
                    conn.execute("BEGIN")
                    try:
                        result = fn(conn)
                    finally:
                        conn.execute("COMMIT")
                except Exception as exc:
                    error = map_error(exc)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(resolve, future, result, error)
        finally:
            conn.close()

    def stop(self) -> None:
        for _ in self._threads:
            self.queue.put(None)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


def resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """On the loop: settle the caller's future (unless it was cancelled meanwhile)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
