"""Connections that have not logged in yet: a deadline, and a cap that one set of
addresses cannot use to lock everyone else out.

Issue 16: with only `max_connections` per listener and the 30-minute IMAP idle timeout,
40 addresses x 50 connections that never log in shut IMAP for half an hour. Here, per
listener that asks for it (IMAP and POP3, where every user logs in first):

- a connection must log in within `timeout` seconds of connecting, or it is told so and
  closed (Dovecot's login processes allow a few minutes; a client logs in at once);
- at most `limit` connections wait for login at a time. When one more arrives, the
  oldest waiting connection of the address that holds the most waiting ones is closed to
  make room, so a flood from some addresses closes its own connections, never a
  newcomer's from elsewhere (Dovecot closes the oldest unauthenticated client too).

Must not: know any protocol (the reply bytes are given), block, or keep more than one
timer per waiting connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("pillarbox.listener")


@dataclass(frozen=True, slots=True)
class PreauthLimits:
    limit: int = 200
    timeout: float = 60.0
    timeout_reply: bytes = b""  # written before a connection is closed for its deadline
    evicted_reply: bytes = b""  # written before one is closed to make room


@dataclass(slots=True)
class _Waiting:
    ip: str
    close: Callable[[bytes], None]
    timer: asyncio.TimerHandle


class PreauthGate:
    """See the module docstring. Keys are connection ids."""

    def __init__(self, limits: PreauthLimits) -> None:
        self.limits = limits
        self._waiting: dict[str, _Waiting] = {}  # in arrival order
        self._per_ip: Counter[str] = Counter()

    def admit(self, conn_id: str, ip: str, close: Callable[[bytes], None]) -> None:
        """A connection that has to log in; `close(reply)` writes the reply and closes it."""
        if len(self._waiting) >= self.limits.limit:
            self._evict()
        timer = asyncio.get_running_loop().call_later(self.limits.timeout, self._expire, conn_id)
        self._waiting[conn_id] = _Waiting(ip, close, timer)
        self._per_ip[ip] += 1

    def logged_in(self, conn_id: str) -> None:
        """It authenticated (or closed): no deadline, no place in the cap any more."""
        entry = self._waiting.pop(conn_id, None)
        if entry is None:
            return
        entry.timer.cancel()
        self._per_ip[entry.ip] -= 1
        if self._per_ip[entry.ip] <= 0:
            del self._per_ip[entry.ip]

    def _expire(self, conn_id: str) -> None:
        entry = self._waiting.get(conn_id)
        if entry is not None:
            self.logged_in(conn_id)
            log.info("%s closed: no login within %gs", conn_id, self.limits.timeout)
            entry.close(self.limits.timeout_reply)

    def _evict(self) -> None:
        ip, _ = self._per_ip.most_common(1)[0]
        victim = next(cid for cid, w in self._waiting.items() if w.ip == ip)
        entry = self._waiting[victim]
        self.logged_in(victim)
        log.info("%s closed to make room: %d connections wait for login", victim, self.limits.limit)
        entry.close(self.limits.evicted_reply)
