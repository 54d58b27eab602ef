"""The seam through which a front-end asks the running fetcher to act: "fetch this source
now", and "the sources changed, read them again".

Why a seam: the webmail's settings page offers "fetch now", but front-ends never import
each other (DESIGN, import rules), so `web/` cannot reach `fetcher/`. `app.py`, which
builds both, registers the fetcher's scheduler here (`register`); the page calls
`run` and gets a plain `FetchOutcome`. A run goes through the scheduler, so it never
overlaps a scheduled run of the same source and takes the node's claim on it, as every
run in `pillarbox serve` does. Without a registered fetcher (a process that does not
run one), `run` says so instead of fetching.

Must not: fetch anything itself, or hold more than the two callables.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pillarbox.services.errors import TempFailure


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What one run did: messages that arrived, and the failure ("" if none)."""

    fetched: int
    result: str = ""  # the run's summary ("3 new, 1 deleted")
    error: str = ""


RunSource = Callable[[int], Awaitable[FetchOutcome]]


class FetchNow:
    """See the module docstring."""

    def __init__(self) -> None:
        self._run: RunSource | None = None
        self._wake: Callable[[], None] | None = None

    def register(self, run: RunSource, wake: Callable[[], None]) -> None:
        self._run, self._wake = run, wake

    def unregister(self) -> None:
        self._run = self._wake = None

    async def run(self, source_id: int) -> FetchOutcome:
        """Run the source now (after a run of it in flight, if any) and say what came."""
        if self._run is None:
            raise TempFailure("fetching is not running in this server")
        return await self._run(source_id)

    def sources_changed(self) -> None:
        """A source was added, edited or resumed: the scheduler picks it up at once
        rather than at its next rescan."""
        if self._wake is not None:
            self._wake()
