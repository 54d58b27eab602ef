"""Running every fetch source on its own inside `pillarbox serve`.

Theory of operation:
  * When. A source is due `next_delay` after its last run: its interval, doubled for each
    failure in a row up to `retry_max` (never less than the interval), times a random
    factor within ±`JITTER`, so that sources added together do not stay in step and a
    provider that is down is not hammered. A source never run is due at once. The delay
    is drawn once per recorded run (the key of `_Due`), so a rescan does not move it; a
    run by `pillarbox fetch run` in another process is a recorded run like ours.
  * What. Every `rescan` seconds, and whenever something happens (a run ended, an IDLE
    event, `wake()`), the sources are read again: new ones are picked up, removed and
    paused ones dropped (their watchers stopped). At most `max_concurrent` runs at once;
    an event for a source that is running runs it once more afterwards.
  * Paused. Three authentication failures in a row (`FetchSource.paused`) and the source
    is not run again until the user resumes it (`pillarbox fetch resume`) or adds it anew.
  * IDLE. An IMAP source whose run saw IDLE in the server's capabilities gets a watcher
    (`idle.IdleWatcher`), at most `max_idle` in all; each of its events fetches the source
    at once. A watcher that ends (no IDLE after all, a refused login) leaves the source
    to its interval, and the next successful run may start one again.
  * One node per source. Before a run, and for as long as it runs or is watched, the
    source is claimed for this node (`holder`, the server's host name) in the store, the
    claim renewed every `rescan` seconds; a source another node holds is left alone.
    With SQLite there is one node; the claim is the seam for a shared store.

Must not: touch the store except through `services.fetch_sources` and the runner, or
block the loop (watchers are threads; runs use the runner's worker threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pillarbox.config import FetcherConfig
from pillarbox.fetcher.idle import Events, IdleWatcher
from pillarbox.fetcher.imap import ImapClient
from pillarbox.fetcher.mirror import ALL_FOLDERS
from pillarbox.fetcher.runner import RunReport, SourceRunner
from pillarbox.model.fetch import FetchProtocol, FetchSource
from pillarbox.services.errors import AccountError
from pillarbox.services.fetch_sources import FetchSourceService

log = logging.getLogger("pillarbox.fetcher")

JITTER = 0.1
STOP_WAIT = 5.0  # seconds a stopping watcher gets to log out


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    max_concurrent: int = 4
    max_idle: int = 100
    retry_max: float = 3600.0
    rescan: float = 30.0

    @classmethod
    def from_config(cls, config: FetcherConfig) -> ScheduleSettings:
        return cls(config.max_concurrent, config.max_idle, config.retry_max, config.rescan)

    @property
    def claim_seconds(self) -> float:
        """How long a claim lasts unless renewed (every rescan renews it)."""
        return max(600.0, 4 * self.rescan)


def next_delay(source: FetchSource, settings: ScheduleSettings, rng: random.Random) -> float:
    """Seconds from the source's last run to its next (see module docstring)."""
    base = float(source.interval)
    if source.failures:
        cap = max(settings.retry_max, base)
        base = min(base * 2 ** min(source.failures, 32), cap)
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


def _join_all(watchers: list[IdleWatcher], seconds: float) -> None:
    """Wait for stopped watchers to log out, `seconds` for all of them together."""
    deadline = time.monotonic() + seconds
    for watcher in watchers:
        watcher.join(max(deadline - time.monotonic(), 0.0))


@dataclass(frozen=True, slots=True)
class _Due:
    key: tuple[datetime | None, int, int]  # what the delay was drawn for
    at: float  # epoch seconds


class FetchScheduler:
    """Runs the sources of every account (see module docstring)."""

    def __init__(
        self,
        sources: FetchSourceService,
        runner: SourceRunner,
        settings: ScheduleSettings,
        *,
        holder: str,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._sources = sources
        self._runner = runner
        self.settings = settings
        self._holder = holder
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._due: dict[int, _Due] = {}
        self._renewed = 0.0  # when the claims of running and watched sources were renewed
        self._now: set[int] = set()  # to run as soon as a slot is free (an IDLE event)
        self._running: dict[int, asyncio.Task[None]] = {}
        self._watchers: dict[int, IdleWatcher] = {}
        self.idling: set[int] = set()  # sources whose watcher has selected and IDLEs
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._main(), name="fetch-scheduler")

    async def stop(self) -> None:
        """Stop scheduling, cancel runs in flight (each delivery is one transaction, so a
        run cut anywhere has lost and duplicated nothing) and end the watchers."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        runs = list(self._running.values())
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        watchers = list(self._watchers.values())
        self._watchers.clear()
        self.idling.clear()
        for watcher in watchers:
            watcher.stop()
        await asyncio.to_thread(_join_all, watchers, STOP_WAIT)
        for source_id in {w.source_id for w in watchers}:
            with contextlib.suppress(Exception):
                await self._sources.release(source_id, self._holder)

    def wake(self) -> None:
        """Read the sources again now (one was added or resumed, say)."""
        self._wake.set()

    def run_now(self, source_id: int) -> None:
        """Run the source as soon as a slot is free (again after a run in flight)."""
        self._now.add(source_id)
        self._wake.set()

    async def run_once(self, source_id: int) -> RunReport:
        """Run the source now and return its report, for a user who asked (the
        webmail's "fetch now"): after a run of it in flight, and registered as running,
        so that a scheduled run never overlaps it; under this node's claim, as `_run`.
        A paused source is run too: the user asked (as `pillarbox fetch run` does)."""
        while (running := self._running.get(source_id)) is not None:
            await asyncio.wait([running])
        loop = asyncio.get_running_loop()
        done: asyncio.Future[RunReport] = loop.create_future()

        async def go() -> None:
            try:
                claimed = await self._sources.claim(
                    source_id, self._holder, self.settings.claim_seconds
                )
                if claimed is None:
                    raise AccountError(f"fetch source {source_id} is gone or run elsewhere")
                report = await self._runner.run(claimed)
                if claimed.id not in self._watchers:
                    await self._sources.release(claimed.id, self._holder)
                done.set_result(report)
            except asyncio.CancelledError:  # the scheduler stopped
                done.cancel()
                raise
            except Exception as exc:  # handed to the caller, who asked
                if not done.done():
                    done.set_exception(exc)
            finally:
                self._running.pop(source_id, None)
                self._wake.set()

        task = asyncio.create_task(go(), name=f"fetch-now-{source_id}")
        self._running[source_id] = task
        return await done

    # --- the loop ------------------------------------------------------------------------
    async def _main(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait = await self.tick()
            except Exception:  # the store unavailable for a moment: try again later
                log.exception("fetch scheduler: scan failed")
                wait = self.settings.rescan
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.0))

    @property
    def running(self) -> frozenset[int]:
        return frozenset(self._running)

    async def settle(self) -> None:
        """Wait for the runs in flight to end."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def tick(self) -> float:
        """Read the sources and start what is due; seconds until the next thing is."""
        sources = {s.id: s for s in await self._sources.everyone()}
        now = self._clock()
        for source_id in [i for i in self._due if i not in sources]:
            self._forget(source_id)
        for source in sources.values():
            if source.paused:
                self._forget(source.id)
                continue
            key = (source.last_run_at, source.failures, source.interval)
            due = self._due.get(source.id)
            if due is None or due.key != key:
                at = now
                if source.last_run_at is not None:
                    delay = next_delay(source, self.settings, self._rng)
                    at = source.last_run_at.timestamp() + delay
                self._due[source.id] = _Due(key, at)
        if now - self._renewed >= self.settings.rescan:  # not at every IDLE event
            self._renewed = now
            for source_id in set(self._watchers) | set(self._running):
                await self._sources.claim(source_id, self._holder, self.settings.claim_seconds)
        ready = sorted(
            (d.at if i not in self._now else 0.0, i)
            for i, d in self._due.items()
            if (d.at <= now or i in self._now) and i not in self._running
        )
        for _, source_id in ready[: self.settings.max_concurrent - len(self._running)]:
            self._now.discard(source_id)
            task = asyncio.create_task(self._run(sources[source_id]), name=f"fetch-{source_id}")
            self._running[source_id] = task
        later = [d.at for i, d in self._due.items() if i not in self._running]
        return min([*later, now + self.settings.rescan]) - now

    def _forget(self, source_id: int) -> None:
        self._due.pop(source_id, None)
        self._now.discard(source_id)
        watcher = self._watchers.pop(source_id, None)
        self.idling.discard(source_id)
        if watcher is not None:
            watcher.stop()  # its thread ends by itself; it is a daemon

    async def _run(self, source: FetchSource) -> None:
        try:
            claimed = await self._sources.claim(
                source.id, self._holder, self.settings.claim_seconds
            )
            if claimed is None or claimed.paused:
                return  # another node has it, or it is gone or paused
            report = await self._runner.run(claimed)
            if claimed.protocol is FetchProtocol.IMAP and report.idle and not report.error:
                self._watch(claimed)
            if claimed.id not in self._watchers:
                await self._sources.release(claimed.id, self._holder)
        except Exception:
            log.exception("fetch source %d: the scheduled run failed", source.id)
        finally:
            self._running.pop(source.id, None)
            self._wake.set()

    # --- IDLE ----------------------------------------------------------------------------
    def _watch(self, source: FetchSource) -> None:
        if source.id in self._watchers or len(self._watchers) >= self.settings.max_idle:
            return
        password = self._sources.password_of(source)
        named = [f for f in source.source_folders if f != ALL_FOLDERS]
        folder = named[0] if named else "INBOX"

        def connect() -> tuple[ImapClient, str]:
            return self._runner.connect_imap(source, password)

        events = self._events(source.id, lambda: self._watchers.get(source.id) is watcher)
        watcher = IdleWatcher(source.id, folder, connect, events)
        self._watchers[source.id] = watcher
        watcher.start()

    def _events(self, source_id: int, current: Callable[[], bool]) -> Events:
        """Callbacks for a watcher's thread, each handed to this loop (and ignored once
        that watcher was stopped or replaced)."""
        loop = self._loop
        assert loop is not None

        def ready() -> None:
            if current():
                self.idling.add(source_id)
                self.run_now(source_id)

        def ended(why: str) -> None:
            if current():
                log.info("fetch source %d: no longer watched with IDLE: %s", source_id, why)
                self._watchers.pop(source_id, None)
                self.idling.discard(source_id)

        return Events(
            ready=lambda: loop.call_soon_threadsafe(ready),
            changed=lambda: loop.call_soon_threadsafe(self.run_now, source_id),
            ended=lambda why: loop.call_soon_threadsafe(ended, why),
        )
