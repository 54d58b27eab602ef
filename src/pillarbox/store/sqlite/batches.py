"""The queue discipline of group commit, shared by the store's writer threads."""

from __future__ import annotations

import queue
from typing import TypeVar

T = TypeVar("T")


def next_batch(items: queue.SimpleQueue[T | None], limit: int) -> tuple[list[T], bool]:
    """Wait for one item, then take whatever else is already queued, up to `limit`.

    Returns (batch, stop): a `None` in the queue asks the thread to stop once it has
    handled the batch taken with it. Everything waiting joins one commit, so the more
    callers queue up, the fewer commits (and fsyncs) each of them costs."""
    first = items.get()
    if first is None:
        return [], True
    batch = [first]
    while len(batch) < limit:
        try:
            item = items.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
    return batch, False
