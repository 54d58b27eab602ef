"""The progress bar of `pillarbox fetch run`: for a large fetch, on a terminal only.

A bar per source folder with at least `LARGE` new messages (a first fetch of a big
mailbox, typically), drawn by tqdm on stderr and only when stderr is a terminal: stdout
carries the contract's bare count, and a script reading stderr sees no bar either.

Must not: write to stdout.
"""

from __future__ import annotations

from typing import Any, TextIO

from tqdm import tqdm

from pillarbox.model.fetch import FetchSource

LARGE = 100  # new messages in one folder: fewer finish before a bar is worth drawing


class TerminalProgress:
    """Implements `runner.Progress` with tqdm."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None

    def begin(self, source: FetchSource, folder: str, total: int) -> None:
        self.end()
        if total >= LARGE:
            where = f"{source.host} {folder}".rstrip()
            self._bar = tqdm(
                total=total, desc=f"source {source.id} ({where})", unit="msg", file=self._stream
            )

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def terminal_progress(stream: TextIO) -> TerminalProgress | None:
    """A progress bar on `stream` if it is a terminal, else None."""
    return TerminalProgress(stream) if stream.isatty() else None
