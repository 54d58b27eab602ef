"""How many mail sessions an account holds from one address, and the cap on it.

One account could hold `max_connections_per_ip` (50) IMAP connections, each able to
pin memory and a slot of the listener (issue 16). The cap is per account *and* source
address, as Dovecot's ``mail_max_userip_connections`` (default 10 there and here): a
user's phone, laptop and webmail behind one NAT share it, and one address cannot use a
whole account's worth of connections. IMAP and POP3 sessions count from login to logout;
the webmail does not (it holds no connection per page).

Must not: know any protocol (front-ends choose the refusal's wording).
"""

from __future__ import annotations

from collections import Counter


class TooManySessions(Exception):
    """The account already holds `limit` sessions from this address."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Maximum number of connections from user+IP exceeded ({limit})")
        self.limit = limit


class AccountSessions:
    """Counts per (account id, address); 0 as the limit means no limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: Counter[tuple[int, str]] = Counter()

    def acquire(self, account_id: int, ip: str) -> None:
        """Count one more session, or raise TooManySessions (nothing counted then)."""
        key = (account_id, ip)
        if self.limit and self._held[key] >= self.limit:
            raise TooManySessions(self.limit)
        self._held[key] += 1

    def release(self, account_id: int, ip: str) -> None:
        key = (account_id, ip)
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]
