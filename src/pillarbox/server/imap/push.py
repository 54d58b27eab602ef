"""Writing a change to the IDLE sessions of an account without waking each one.

Issue 13's push at scale: one delivery to a mailbox that ten thousand sessions IDLE on
must reach all of them quickly on two cores. Waking each session's task costs a loop
turn, a coroutine resumption through IDLE's nested awaits and a fresh wait afterwards,
per session, and that was most of the Python time of a fan-out. A session that waits in
IDLE and has nothing else going on (`Session.push_idle` checks: no output queued, no
NOTIFY, no reload or store call needed) instead has its untagged responses formatted and
written right here, in one callback for the whole batch. Anything out of the ordinary
falls back to waking the session's task, which reports through the usual path, so the
batch is only ever a shortcut to the same bytes.

The batch runs two loop turns after the publish, like the task wake it replaces: the
command whose commit published the change resumes first and its reply is not held up
behind the fan-out.

Must not: await, or write to a session that is not waiting in IDLE.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("pillarbox.imap")


class Pushable(Protocol):
    def push_idle(self) -> None: ...


class PushBatch:
    """The sessions to push to on the next run, and whether a run is scheduled."""

    __slots__ = ("_scheduled", "_sessions")

    def __init__(self) -> None:
        self._sessions: list[Pushable] = []
        self._scheduled = False

    def add(self, session: Pushable) -> None:
        self._sessions.append(session)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._defer)

    def _defer(self) -> None:
        # One more turn, so the publishing command's continuation (scheduled when its
        # store call resolved, after the publish) runs before the fan-out.
        asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        sessions, self._sessions = self._sessions, []
        self._scheduled = False
        for session in sessions:
            try:
                session.push_idle()
            except Exception:  # one session's fault must not stop the others' pushes
                log.exception("pushing a change to an idle session failed")
