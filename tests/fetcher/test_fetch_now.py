"""`FetchScheduler.run_once`, what the webmail's "fetch now" runs (through
`services.fetch_now`): it waits for a scheduled run of the source in flight instead of
overlapping it, and while it runs the scheduler starts no run of that source, so two
runs never fetch the same message twice."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from pillarbox.fetcher.scheduler import FetchScheduler, ScheduleSettings
from pillarbox.services.errors import TempFailure
from pillarbox.services.fetch_now import FetchNow
from tests.e2e.conftest import RunningServer
from tests.fetcher.conftest import Local, message, put


async def test_fetch_now_never_overlaps_a_scheduled_run(
    provider: RunningServer, local: Local
) -> None:
    put(provider, message(1))
    put(provider, message(2))
    source = await local.add(provider, "pop3")
    now = [time.time()]
    sched = FetchScheduler(
        local.sources,
        local.runner,
        ScheduleSettings(),
        holder="node-a",
        clock=lambda: now[0],
        rng=random.Random(7),
    )
    await sched.tick()  # never run: due at once
    assert sched.running == {source.id}
    report = await sched.run_once(source.id)  # after the scheduled run, not beside it
    assert report.fetched == 0 and not report.error
    assert await local.subjects() == ["message 1", "message 2"]

    put(provider, message(3))
    task = asyncio.create_task(sched.run_once(source.id))
    for _ in range(1000):  # let the task register itself (no time passes)
        if sched.running:
            break
        await asyncio.sleep(0)
    assert sched.running == {source.id}
    now[0] += 10 * 86400  # the source is long due: the scheduler still leaves it alone
    await sched.tick()
    report = await task
    assert report.fetched == 1
    await sched.settle()
    assert await local.subjects() == ["message 1", "message 2", "message 3"]
    fresh = await local.store.get_fetch_source(source.id)
    assert fresh is not None and fresh.last_result.startswith("1 new")


async def test_without_a_fetcher_fetch_now_says_so() -> None:
    """A process that runs no fetcher (the seam was never registered) refuses plainly."""
    seam = FetchNow()
    seam.sources_changed()  # nothing to wake: no error
    with pytest.raises(TempFailure, match="not running"):
        await seam.run(1)
