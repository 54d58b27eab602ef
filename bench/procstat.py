"""Memory and CPU of a server's process tree, read from /proc (Linux only).

Pillarbox is one process; Dovecot is a master with a child per IMAP connection plus login,
auth, log and anvil processes. Both are measured the same way: every process descended
from the side's root pid, summed. Memory is PSS (proportional set size: each shared page
counted once across the processes sharing it), so summing over Dovecot's hundreds of
``imap`` processes does not count the shared libraries hundreds of times.

Must not: signal or otherwise touch the processes it reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """*root* and every live descendant of it (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found = [root]
    for pid in found:  # grows while iterating: breadth-first
        found.extend(children.get(pid, ()))
    return found


def pss_kib(pids: Iterable[int]) -> int:
    """Summed ``Pss:`` of *pids* in KiB (processes that exited meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            text = (PROC / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time *pids* have run so far, in seconds, all their threads included.

    From /proc/PID/schedstat (nanoseconds on the CPU): /proc/PID/stat's utime and stime
    advance in clock ticks (10 ms) sampled per process, which counts a few hundred Dovecot
    processes each running a millisecond as next to nothing. Falls back to stat's ticks
    where schedstat is missing."""
    total = 0.0
    for pid in pids:
        try:
            total += int((PROC / str(pid) / "schedstat").read_text().split()[0]) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        fields = _stat_fields(pid)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: proc(5)
    return total


def wait_quiet(
    roots: Iterable[int], *, busy: float = 0.05, window: float = 0.5, timeout: float = 120.0
) -> float:
    """Wait until the process trees of *roots* use less than *busy* of one core over
    *window* seconds (at most *timeout*); returns the seconds waited.

    For measurements taken after a bulk set-up: a server still indexing or checkpointing
    what the set-up wrote would otherwise be timed doing its own background work, more on
    one side than on the other."""
    roots = list(roots)
    started = time.monotonic()
    while True:
        pids = [pid for root in roots for pid in process_tree(root)]
        before = cpu_seconds(pids)
        time.sleep(window)  # the sampling interval of the measurement itself
        used = cpu_seconds(pids) - before
        waited = time.monotonic() - started
        if used < busy * window or waited >= timeout:
            return waited
