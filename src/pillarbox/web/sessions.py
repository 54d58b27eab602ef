"""Webmail sign-in sessions, kept in this process's memory.

A session is a random id (256 bits from `secrets`) that the browser holds in a cookie
and that maps, here, to the signed-in account and the session's CSRF token. Nothing
about the account travels in the cookie, so there is nothing to sign or to decrypt, and
signing out or expiry takes effect at once: the id simply stops naming anything.

In memory only: a restart signs everyone out, and several server processes would not
share sessions. That is accepted for one process; a store-backed table is the step for
several. Sessions end after `idle` seconds without a request and `lifetime` seconds
after sign-in whatever happens; the number of live sessions is capped so that sign-ins
cannot grow memory without bound.

Must not: check passwords (services.auth does) or know about HTTP beyond cookie values.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from pillarbox.model import Account

COOKIE = "pillarbox_session"
# A token for the sign-in form itself (a double-submit cookie): there is no session yet
# to keep it in, and without it another site could sign a browser into its own account.
SIGNIN_COOKIE = "pillarbox_signin"
MAX_SESSIONS = 10_000


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so a token cannot be guessed byte by byte."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(slots=True)
class WebSession:
    id: str
    account: Account
    csrf: str
    started: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    """Live sessions by id, least recently used first (for eviction at the cap)."""

    def __init__(
        self, *, idle: float = 8 * 3600, lifetime: float = 7 * 86400, cap: int = MAX_SESSIONS
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.cap = cap
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, account: Account) -> WebSession:
        """A new session with a new id: an id a browser held before sign-in is never
        promoted (no session fixation)."""
        while len(self._sessions) >= self.cap:
            self._sessions.popitem(last=False)
        session = WebSession(new_token(), account, new_token())
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> WebSession | None:
        """The live session of that id, touched; None if unknown or expired."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle or now - session.started > self.lifetime:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        self._sessions.move_to_end(session_id)
        return session

    def peek(self, session_id: str | None) -> WebSession | None:
        """The live session of that id without touching it (None if unknown or
        expired): for work around a request that must not count as its use."""
        if session_id is None or not self.alive(session_id):
            return None
        return self._sessions[session_id]

    def alive(self, session_id: str) -> bool:
        """Is the session still live? Unlike `get`, this does not count as use: an open
        event stream must not keep a forgotten session alive."""
        session = self._sessions.get(session_id)
        if session is None:
            return False
        now = time.monotonic()
        return now - session.last_seen <= self.idle and now - session.started <= self.lifetime

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def end_others(self, account_id: int, keep: str) -> list[str]:
        """End every session of the account but `keep` (its password changed: whoever
        signed in with the old one is out); the ids ended, so their streams end too."""
        ended = [
            sid for sid, s in self._sessions.items() if s.account.id == account_id and sid != keep
        ]
        for sid in ended:
            del self._sessions[sid]
        return ended
