"""Webmail sign-in sessions: in this process's memory, or in the store's session table.

A session is a random id (256 bits from `secrets`) that the browser holds in a cookie
and that maps to the signed-in account and the session's CSRF token. Nothing about the
account travels in the cookie, so there is nothing to sign or to decrypt, and signing
out or expiry takes effect at once: the id simply stops naming anything.

Where they live: the running server keeps them in the store (`table`,
`services.web_sessions`), a table every worker process and node reads (both backends),
because the kernel hands a browser's connections to any worker and a TCP load balancer
its requests to any node; a restart signs nobody out. The table holds the sha256 of the id,
never the id. Every request reads its session's row (so a sign-out on one node counts on
all of them at once), but `last_seen` is written at most every `touch_every` seconds (a
minute, or a quarter of `idle` if that is shorter), so a session may be judged idle that
much early. Without a table (unit tests) they are in this object's memory.

Sessions end after `idle` seconds without a request and `lifetime` seconds after
sign-in whatever happens; the number of live sessions is capped (by the backend, with a
table) so that sign-ins cannot grow memory without bound. Times are monotonic in memory
and wall-clock in the table (other nodes compare them).

Must not: check passwords (services.auth does) or know about HTTP beyond cookie values.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from pillarbox.model import Account
from pillarbox.model.cluster import WebSessionRecord
from pillarbox.services.web_sessions import WebSessionTable

COOKIE = "pillarbox_session"
# A token for the sign-in form itself (a double-submit cookie): there is no session yet
# to keep it in, and without it another site could sign a browser into its own account.
SIGNIN_COOKIE = "pillarbox_signin"
MAX_SESSIONS = 10_000


def new_token() -> str:
    return secrets.token_urlsafe(32)


def id_hash(session_id: str) -> str:
    """What the table keeps instead of the id: its sha256, in hex."""
    return hashlib.sha256(session_id.encode()).hexdigest()


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
    """Live sessions by id (see the module docstring); in memory, least recently used
    first (for eviction at the cap), unless a `table` is given."""

    def __init__(
        self,
        *,
        idle: float = 8 * 3600,
        lifetime: float = 7 * 86400,
        cap: int = MAX_SESSIONS,
        table: WebSessionTable | None = None,
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.cap = cap
        self.table = table
        self.touch_every = min(60.0, idle / 4)
        # In memory: the sessions. With a table: the sessions this node has served, so
        # their accounts need no query per request and `end_others` can name their ids
        # (this node's event streams are keyed by id, the table knows only hashes).
        self._sessions: OrderedDict[str, WebSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(self, account: Account) -> WebSession:
        """A new session with a new id: an id a browser held before sign-in is never
        promoted (no session fixation)."""
        if self.table is None:
            session = WebSession(new_token(), account, new_token())
        else:
            now = time.time()
            session = WebSession(new_token(), account, new_token(), now, now)
            record = WebSessionRecord(id_hash(session.id), account.id, session.csrf, now, now)
            await self.table.add(record)
        self._remember(session)
        return session

    async def get(self, session_id: str | None) -> WebSession | None:
        """The live session of that id, touched; None if unknown or expired."""
        if not session_id:
            return None
        if self.table is None:
            session = self._live_in_memory(session_id, forget_expired=True)
            if session is not None:
                session.last_seen = time.monotonic()
                self._sessions.move_to_end(session_id)
            return session
        session = await self._load(session_id)
        if session is not None:
            now = time.time()
            if now - session.last_seen >= self.touch_every:
                await self.table.touch(id_hash(session_id), now)
                session.last_seen = now
        return session

    async def peek(self, session_id: str | None) -> WebSession | None:
        """The live session of that id without touching it (None if unknown or
        expired): for work around a request that must not count as its use."""
        if not session_id:
            return None
        if self.table is None:
            return self._live_in_memory(session_id, forget_expired=False)
        return await self._load(session_id)

    async def alive(self, session_id: str) -> bool:
        """Is the session still live? Unlike `get`, this does not count as use: an open
        event stream must not keep a forgotten session alive."""
        return await self.peek(session_id) is not None

    async def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        if self.table is not None:
            await self.table.remove(id_hash(session_id))

    async def end_others(self, account_id: int, keep: str) -> list[str]:
        """End every session of the account but `keep` (its password changed: whoever
        signed in with the old one is out); the ids ended that this node knows, so their
        streams end too (other nodes' streams end at their next liveness check)."""
        ended = [
            sid for sid, s in self._sessions.items() if s.account.id == account_id and sid != keep
        ]
        for sid in ended:
            del self._sessions[sid]
        if self.table is not None:
            await self.table.remove_others(account_id, id_hash(keep))
        return ended

    # --- internals --------------------------------------------------------------------------

    def _remember(self, session: WebSession) -> None:
        while len(self._sessions) >= self.cap:
            self._sessions.popitem(last=False)
        self._sessions[session.id] = session

    def _live_in_memory(self, session_id: str, *, forget_expired: bool) -> WebSession | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle or now - session.started > self.lifetime:
            if forget_expired:
                del self._sessions[session_id]
            return None
        return session

    async def _load(self, session_id: str) -> WebSession | None:
        """The table's session of that id, if live, with its account (from this node's
        copy when it has one); an expired session or a removed account ends it."""
        assert self.table is not None
        hashed = id_hash(session_id)
        record = await self.table.get(hashed)
        known = self._sessions.pop(session_id, None)
        if record is None:
            return None
        now = time.time()
        if now - record.last_seen > self.idle or now - record.created > self.lifetime:
            await self.table.remove(hashed)
            return None
        if known is not None and known.account.id == record.account_id:
            account = known.account
        else:
            found = await self.table.account(record.account_id)
            if found is None:  # removed while signed in
                await self.table.remove(hashed)
                return None
            account = found
        session = known or WebSession(session_id, account, record.csrf)
        session.account = account
        session.csrf = record.csrf
        session.started = record.created
        session.last_seen = record.last_seen
        self._remember(session)
        return session
