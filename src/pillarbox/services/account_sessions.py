"""How many mail sessions an account holds from one address, and the cap on it.

One account could hold `max_connections_per_ip` (50) IMAP connections, each able to
pin memory and a slot of the listener (issue 16). The cap is per account *and* source
address, as Dovecot's ``mail_max_userip_connections`` (default 10 there and here): a
user's phone, laptop and webmail behind one NAT share it, and one address cannot use a
whole account's worth of connections. IMAP and POP3 sessions count from login to logout;
the webmail does not (it holds no connection per page).

Where the counts live: `SessionCounts`. One process keeps them in its memory
(`LocalSessionCounts`); several worker processes behind one port (`[server] workers`)
count in shared memory (`workers/`), so the cap holds for the server, not per worker.

Must not: know any protocol (front-ends choose the refusal's wording).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol


class TooManySessions(Exception):
    """The account already holds `limit` sessions from this address."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Maximum number of connections from user+IP exceeded ({limit})")
        self.limit = limit


class SessionCounts(Protocol):
    """The counts per (account id, address), wherever they live. Called on the event
    loop; each call is one atomic step (no await)."""

    def try_acquire(self, account_id: int, ip: str, limit: int) -> bool:
        """Count one more session unless `limit` (0: none) are held: True if counted."""
        ...

    def release(self, account_id: int, ip: str) -> None:
        """One counted session ended."""
        ...


class LocalSessionCounts:
    """The counts in this process's memory."""

    def __init__(self) -> None:
        self._held: Counter[tuple[int, str]] = Counter()

    def try_acquire(self, account_id: int, ip: str, limit: int) -> bool:
        key = (account_id, ip)
        if limit and self._held[key] >= limit:
            return False
        self._held[key] += 1
        return True

    def release(self, account_id: int, ip: str) -> None:
        key = (account_id, ip)
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]


class AccountSessions:
    """The cap on sessions per (account id, address); 0 as the limit means no limit.
    `counts`: where they are counted (this process by default)."""

    def __init__(self, limit: int, counts: SessionCounts | None = None) -> None:
        self.limit = limit
        self._counts: SessionCounts = counts if counts is not None else LocalSessionCounts()

    def acquire(self, account_id: int, ip: str) -> None:
        """Count one more session, or raise TooManySessions (nothing counted then)."""
        if not self._counts.try_acquire(account_id, ip, self.limit):
            raise TooManySessions(self.limit)

    def release(self, account_id: int, ip: str) -> None:
        self._counts.release(account_id, ip)
