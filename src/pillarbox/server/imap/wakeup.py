"""A session's "something changed" signal, cheap enough for ten thousand idle sessions.

An idle session waits for two things at once: bytes from its client and a change the
pump recorded. ``asyncio.wait`` on the read task and an ``Event.wait()`` task creates a
task, a wait set and callbacks on every wake; with thousands of sessions woken by one
delivery that dominated the fan-out. Here a wake is one plain future per wait, resolved
directly by the pump (``set``) or by the read task's done callback (added once per read).
"""

from __future__ import annotations

import asyncio


class Wakeup:
    """Level-triggered flag with the ``set``/``clear``/``is_set`` of ``asyncio.Event``,
    plus `wait_or`: wait until set or until a given task finishes, without a new task."""

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    async def wait_or(self, task: asyncio.Future[bytes]) -> None:
        """Return once the flag is set or `task` is done (whichever first)."""
        if self._flag or task.done():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter

        def done(_: object) -> None:
            if not waiter.done():
                waiter.set_result(None)

        task.add_done_callback(done)
        try:
            await waiter
        finally:
            task.remove_done_callback(done)
            if self._waiter is waiter:
                self._waiter = None
