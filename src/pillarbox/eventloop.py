"""The event loop every long-running command runs on.

A module of its own so that the command line gets it without importing `app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (it is a dependency on Linux): the servers spend most
    of their time moving bytes, which uvloop does in C; the stdlib loop otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop wheels
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run() on `new_event_loop()` (Python 3.11 has no loop_factory)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main)
