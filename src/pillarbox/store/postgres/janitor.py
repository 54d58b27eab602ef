"""The periodic clean-up of the PostgreSQL backend, run by one node at a time.

Owns deleting what no transaction deletes itself (docs/plans/issue-17-postgres.md §1, §4):
  * blobs whose last reference went (`refs <= 0`, stamped `unreferenced_at` by the
    reference triggers) more than `GRACE` seconds ago and that no reader holds a live
    lease on (`blob_readers`): a session streaming an expunged message keeps reading it,
    which is why an expunge does not delete the bytes in its own transaction;
  * expired read leases (a reader that died without closing);
  * uploads never finished (`state = 'writing'`) after `STALE` seconds: a node died
    mid-upload. Not at `open` as the SQLite backend does, since another node may be
    uploading right now;
  * blobs finished but never referenced (no `unreferenced_at`: no reference ever came)
    after `STALE` seconds: a node died between `BlobWriter.finish` and the row that
    was to refer to the blob.
Their chunks and search text go with them (ON DELETE CASCADE).

Theory of operation: every node runs the loop (`Janitor`: first run `FIRST_DELAY`
seconds after the store opens, then every `INTERVAL`), but a run does anything only on
the node that gets the session advisory lock `LOCK` (`pg_try_advisory_lock`) on the
pooled connection it runs on: the lock goes with the connection (the pool's reset
unlocks it when the connection goes back, a dead node's session ends), so a node that
dies mid-run never blocks the others. Deletes go in batches of `BATCH` rows, each its
own transaction, and skip rows another transaction holds (`SKIP LOCKED`): a delivery
that references a blob at this moment is never waited for, and then the batch re-checks
`refs` on the row it locked. A blob a row still refers to is never deleted even if its
count were wrong (the NOT EXISTS checks; the foreign keys would refuse it anyway).

Times are the database's (`now()`), as the triggers stamp `unreferenced_at`.

`run_once` is the job itself (tests call it); `JanitorMixin` gives `PgStore` the loop,
started at `open` on a server node (`server=True`) and stopped at `close`.
Must not: delete anything a row refers to, or run on two nodes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from pillarbox.store.postgres import cluster_state
from pillarbox.store.postgres.core import Conn, PgCore

log = logging.getLogger("pillarbox.store.janitor")

INTERVAL = 60.0  # seconds between runs
FIRST_DELAY = 5.0  # seconds from open to the first run
GRACE = 300.0  # an unreferenced blob is kept this long (seconds)
STALE = 86400.0  # an unfinished upload, or a finished blob never referenced (seconds)
BATCH = 500  # rows per delete statement
LOCK = (2, 0)  # pg_try_advisory_lock(2, 0): the janitor's (schema.py migrates under its own)

# Nothing a row refers to, whatever `refs` says.
_UNUSED = (
    " AND NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.blob_id = b.id)"
    " AND NOT EXISTS (SELECT 1 FROM queue AS q WHERE q.blob_id = b.id)"
)
_NO_LIVE_LEASE = (
    " AND NOT EXISTS (SELECT 1 FROM blob_readers AS r WHERE r.blob_id = b.id AND r.until > $1)"
)


def _delete_blobs(where: str) -> str:
    return (
        "DELETE FROM blobs WHERE id IN (SELECT b.id FROM blobs AS b WHERE "
        + where
        + f" ORDER BY b.id LIMIT {BATCH} FOR UPDATE SKIP LOCKED)"
    )


# (count name, statement of one batch; $1 is the run's time in epoch seconds). Other
# tables with expiring rows (web sessions, login throttles) add their statement here.
WEB_IDLE = 8 * 3600.0
WEB_LIFETIME = 7 * 86400.0

JOBS: tuple[tuple[str, str], ...] = (
    (
        "blobs",
        _delete_blobs(
            f"b.refs <= 0 AND b.state <> 'writing' AND b.unreferenced_at < $1 - {GRACE}"
            + _NO_LIVE_LEASE
            + _UNUSED
        ),
    ),
    (
        "abandoned",
        _delete_blobs(
            "b.refs <= 0 AND b.state <> 'writing' AND b.unreferenced_at IS NULL"
            f" AND b.created_at < $1 - {STALE}" + _NO_LIVE_LEASE + _UNUSED
        ),
    ),
    ("uploads", _delete_blobs(f"b.state = 'writing' AND b.created_at < $1 - {STALE}" + _UNUSED)),
    (
        "leases",
        "DELETE FROM blob_readers WHERE ctid IN (SELECT ctid FROM blob_readers"
        f" WHERE until <= $1 LIMIT {BATCH} FOR UPDATE SKIP LOCKED)",
    ),
)


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rpartition(" ")[2] or 0)


async def _run_jobs(conn: Conn) -> dict[str, int]:
    now = float(await conn.fetchval("SELECT extract(epoch FROM now())::float8"))
    counts: dict[str, int] = {}
    for name, statement in JOBS:
        total = 0
        while True:
            done = _count(await conn.execute(statement, now))
            total += done
            if done < BATCH:
                break
        counts[name] = total
    # Leases, login records and web sessions that ended (the webmail's limits: 8 h idle,
    # 7 days in all, web/sessions.py; the store cannot import web).
    await cluster_state.purge_expired(conn, now, web_idle=WEB_IDLE, web_lifetime=WEB_LIFETIME)
    return counts


async def run_once(source: asyncpg.Pool | PgCore) -> dict[str, int]:
    """One run of every job, if no other node is running them: the counts of rows
    deleted per job (`JOBS`), and `ran` 1; or just `ran` 0 when another node holds the
    janitor's lock."""
    pool = source if isinstance(source, asyncpg.Pool) else source._the_pool()
    async with pool.acquire() as conn:
        locked = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *LOCK)
        if not locked:
            return {"ran": 0}
        try:
            counts = await _run_jobs(conn)
        finally:
            # The pool does not reset sessions on release (store/postgres/core.py): a
            # connection whose unlock failed is closed, which releases the lock.
            try:
                await conn.execute("SELECT pg_advisory_unlock($1, $2)", *LOCK)
            except Exception:
                conn.terminate()
    return {"ran": 1, **counts}


class Janitor:
    """The loop: `run_once` after `first_delay` seconds, then every `interval`, until
    `stop`. A failing run is logged and the loop goes on (the next run retries)."""

    def __init__(
        self,
        store: PgCore,
        *,
        interval: float = INTERVAL,
        first_delay: float = FIRST_DELAY,
    ) -> None:
        self._store = store
        self.interval = interval
        self.first_delay = first_delay
        self.runs = 0  # runs finished (successful or not), for tests and logs
        self.last: dict[str, int] = {}
        self._ran = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="janitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_runs(self, count: int) -> None:
        """Return once `count` runs have finished (wrap in a timeout)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs >= count)

    async def _loop(self) -> None:
        delay = self.first_delay
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            try:
                self.last = await run_once(self._store)
                deleted = {k: v for k, v in self.last.items() if k != "ran" and v}
                if deleted:
                    log.info("janitor: deleted %s", deleted)
            except Exception:
                log.exception("janitor: run failed; retrying in %.0f s", self.interval)
            async with self._ran:
                self.runs += 1
                self._ran.notify_all()


class JanitorMixin(PgCore):
    """Runs the `Janitor` of a server node (`server=True`) while the store is open."""

    janitor: Janitor | None = None
    janitor_interval: float = INTERVAL
    janitor_first_delay: float = FIRST_DELAY

    async def open(self) -> None:
        await super().open()
        self._start_janitor()

    async def close(self) -> None:
        await self._stop_janitor()
        await super().close()

    def _start_janitor(self) -> None:
        """Start the loop (a server node only; idempotent)."""
        if not self._server or self.janitor is not None:
            return
        self.janitor = Janitor(
            self, interval=self.janitor_interval, first_delay=self.janitor_first_delay
        )
        self.janitor.start()

    async def _stop_janitor(self) -> None:
        janitor, self.janitor = self.janitor, None
        if janitor is not None:
            await janitor.stop()
