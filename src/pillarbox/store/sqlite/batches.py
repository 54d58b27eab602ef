"""The queue discipline of group commit, shared by the store's writer threads."""

from __future__ import annotations

import queue
import time
from typing import TypeVar

T = TypeVar("T")


def next_batch(
    items: queue.SimpleQueue[T | None],
    limit: int,
    *,
    wait: float | None = None,
    gather: float = 0.0,
) -> tuple[list[T], bool]:
    """Wait for one item (at most `wait` seconds; None: for ever), then take more, up to
    `limit`: whatever else is already queued, and what arrives within `gather` seconds
    of the first (0: nothing more is waited for).

    Returns (batch, stop): an empty batch when `wait` ran out; a `None` in the queue asks
    the thread to stop once it has handled the batch taken with it. Everything waiting
    joins one commit, so the more callers queue up, the fewer commits (and fsyncs) each
    of them costs; `gather` trades a little latency for fewer, larger commits where a
    commit costs much per transaction (FTS5 writes a segment per transaction)."""
    try:
        first = items.get() if wait is None else items.get(timeout=max(0.0, wait))
    except queue.Empty:
        return [], False
    if first is None:
        return [], True
    batch = [first]
    deadline = time.monotonic() + gather
    while len(batch) < limit:
        left = deadline - time.monotonic() if gather else 0.0
        try:
            item = items.get(timeout=left) if left > 0 else items.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False
