"""What a workload is, and the helpers several workloads share.

A workload is a class with a name, the metrics it reports, ``prepare`` (untimed set-up on
one side, run once) and ``run(index)`` (one timed repetition, returning ``{metric: value}``).
The runner (bench.runner) makes one instance per side, calls ``prepare`` once and ``run``
``--runs`` times, and turns the values into median/min/max. A workload signals failure by
raising; the runner records the message for that side and moves on.

Must not: assert on timings, sleep blindly, or loop without a deadline.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ClassVar, ParamSpec, TypeVar

from bench.servers import Endpoint, Log
from bench.wire import ImapClient, ProtocolFailure, imap_login

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str = ""


@dataclass
class Context:
    endpoint: Endpoint
    quick: bool
    log: Log
    #: Free-form switches from the command line (e.g. ``build="append"``).
    options: dict[str, str] = field(default_factory=dict)


class WorkloadError(RuntimeError):
    """The workload could not produce a figure on this side."""


class Workload(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: ``prepare`` is long and measures nothing, so it runs on every side at the same
    #: time, before any side is measured (it must not rely on earlier workloads' mail).
    setup_in_parallel: ClassVar[bool] = False
    #: The sides (``Endpoint.side``) it runs on; ``None``: every side. On another side the
    #: runner records ``skipped`` (with `skip_reason`) instead of figures.
    sides: ClassVar[frozenset[str] | None] = None
    skip_reason: ClassVar[str] = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.endpoint = ctx.endpoint

    @abstractmethod
    def params(self) -> dict[str, object]:
        """The sizes this instance uses (depend on ``ctx.quick``), recorded in the JSON."""

    @classmethod
    @abstractmethod
    def metrics(cls) -> list[Metric]:
        """Every metric ``run`` returns, in display order."""

    def prepare(self) -> dict[str, object]:
        """Untimed set-up on this side; return facts worth recording (e.g. build rate)."""
        return {}

    @abstractmethod
    def run(self, index: int) -> dict[str, float]:
        """One timed repetition (``index`` from 0); return a value for every metric."""

    def finish(self) -> None:
        """Release what ``prepare`` kept open (sessions); called even after a failure."""
        return None

    def log(self, message: str) -> None:
        self.ctx.log(f"[{self.endpoint.side}] {self.name}: {message}")


# -- measuring -------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of *values*; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class LatencyLog:
    """Thread-safe per-operation latency samples, in seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: dict[str, list[float]] = {}

    def add(self, operation: str, seconds: float) -> None:
        with self._lock:
            self.samples.setdefault(operation, []).append(seconds)

    def timed(self, operation: str, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``call(*args, **kwargs)``, recording how long it took under *operation*."""
        start = time.perf_counter()
        result = call(*args, **kwargs)
        self.add(operation, time.perf_counter() - start)
        return result


def parallel(workers: int, items: Iterable[T], job: Callable[[T], R]) -> list[R]:
    """Run *job* over *items* on *workers* threads; re-raise the first failure.

    If this thread is interrupted (Ctrl-C, SIGTERM), queued jobs are cancelled and the
    running ones left to fail on their own once the servers are stopped, so the caller's
    clean-up is not held up by them.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(job, item) for item in items]
        results: list[R] = []
        error: Exception | None = None
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # collected, re-raised below once all are done
                error = error or exc
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if error is not None:
        raise error
    return results


def chunks(items: Sequence[T], count: int) -> list[list[T]]:
    """Split *items* round-robin into *count* lists (some may be empty)."""
    out: list[list[T]] = [[] for _ in range(max(1, count))]
    for i, item in enumerate(items):
        out[i % len(out)].append(item)
    return out


# -- mailbox set-up ---------------------------------------------------------------------------


def top_up(
    endpoint: Endpoint,
    users: Sequence[str],
    mailbox: str,
    count: int,
    message: Callable[[str, int], bytes],
    workers: int = 8,
) -> int:
    """Make every user's *mailbox* hold at least *count* messages, by IMAP APPEND.

    ``message(user, n)`` builds the n-th message for *user*. Returns how many were appended.
    """

    def fill(user: str) -> int:
        client = imap_login(endpoint, user)
        try:
            if mailbox.upper() != "INBOX":
                client.create(mailbox)
            have = client.status_messages(mailbox)
            for n in range(have, count):
                client.append(mailbox, message(user, n))
            return max(0, count - have)
        finally:
            client.logout()

    return sum(parallel(workers, users, fill))


def wait_for_counts(
    endpoint: Endpoint,
    targets: dict[str, int],
    timeout: float,
    sessions: dict[str, ImapClient] | None = None,
    interval: float = 0.05,
    mailbox: str = "INBOX",
) -> float:
    """Poll ``STATUS mailbox (MESSAGES)`` until each user's count reaches its target.

    Returns the ``time.perf_counter()`` at which the last target was seen reached. Uses the
    given logged-in *sessions* (one per user) when supplied, else opens its own.
    """
    own = sessions is None
    clients = sessions if sessions is not None else {u: imap_login(endpoint, u) for u in targets}
    pending = dict(targets)
    deadline = time.monotonic() + timeout
    try:
        while True:
            for user in list(pending):
                if clients[user].status_messages(mailbox) >= pending[user]:
                    del pending[user]
            if not pending:
                return time.perf_counter()
            if time.monotonic() > deadline:
                short = {u: pending[u] for u in list(pending)[:3]}
                raise WorkloadError(
                    f"{len(pending)} mailboxes still short after {timeout:.0f}s, e.g. {short}"
                )
            time.sleep(interval)
    finally:
        if own:
            for client in clients.values():
                client.logout()


def open_sessions(
    endpoint: Endpoint, users: Sequence[str], workers: int = 10
) -> dict[str, ImapClient]:
    """Logged-in IMAP sessions for *users*, opened in parallel."""
    opened: dict[str, ImapClient] = {}
    lock = threading.Lock()

    def one(user: str) -> None:
        client = imap_login(endpoint, user)
        with lock:
            opened[user] = client

    try:
        parallel(workers, users, one)
    except BaseException:
        for client in opened.values():
            client.logout()
        raise
    return opened


__all__ = [
    "Context",
    "LatencyLog",
    "Metric",
    "ProtocolFailure",
    "Workload",
    "WorkloadError",
    "chunks",
    "open_sessions",
    "parallel",
    "percentile",
    "top_up",
    "wait_for_counts",
]
