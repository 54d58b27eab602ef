"""Refused connections logged once per source and interval, with a count.

A connection flood is refused cheaply, but a WARNING line per refusal made the flood
cost disk and hid everything else in the log (8,000 lines from one flood, issue 16).
The first refusal of a source in an interval is logged as before; later ones only
counted, and when the interval ends one line says how many more there were. Sources
tracked at once are bounded: past `MAX_SOURCES`, refusals from new sources are counted
together under one entry, so a flood from many addresses costs no more memory.

Must not: block, or keep a timer per refusal (one per source with a count at most).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("pillarbox.listener")

MAX_SOURCES = 10_000
OTHERS = "other addresses"


@dataclass(slots=True)
class _Entry:
    started: float
    more: int = 0
    flush: asyncio.TimerHandle | None = None


class RefusalLog:
    """See the module docstring; `interval` in seconds."""

    def __init__(
        self, listener: str, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.listener = listener
        self.interval = interval
        self._clock = clock
        self._sources: dict[str, _Entry] = {}

    def refused(self, source: str, conn_id: str, reason: str) -> None:
        now = self._clock()
        if source not in self._sources and len(self._sources) >= MAX_SOURCES:
            source = OTHERS
        entry = self._sources.get(source)
        if entry is None or now - entry.started >= self.interval:
            if entry is not None:
                self._flush(source)
            self._sources[source] = _Entry(now)
            log.warning(
                "%s refused %s: %s (more from it are counted, logged every %gs)",
                conn_id,
                source,
                reason,
                self.interval,
            )
            return
        entry.more += 1
        if entry.flush is None:
            delay = max(0.0, entry.started + self.interval - now)
            entry.flush = asyncio.get_running_loop().call_later(delay, self._flush, source)

    def _flush(self, source: str) -> None:
        entry = self._sources.pop(source, None)
        if entry is None:
            return
        if entry.flush is not None:
            entry.flush.cancel()
        if entry.more:
            log.warning(
                "%s: refused %d more connections from %s in the last %gs",
                self.listener,
                entry.more,
                source,
                self.interval,
            )

    def close(self) -> None:
        """Log what is counted (at shutdown)."""
        for source in list(self._sources):
            self._flush(source)
