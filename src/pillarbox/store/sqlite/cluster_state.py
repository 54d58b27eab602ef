"""The state several nodes would share, kept in this process's memory (SQLite backend).

The SQLite store serves one process, so the POP3 maildrop locks, the login-failure
records and the webmail sessions live in plain dictionaries here, exactly as the
services kept them before the PostgreSQL backend moved them into the store: a restart
forgets them (everyone signs in again, throttles start afresh, no lock survives), and
nothing is written to disk. Every operation runs on the event loop without awaiting, so
each is atomic for the process's coroutines (two logins racing for one maildrop get one
lock between them). The dictionaries are bounded: under an attack on many account
names or addresses the oldest entries go first.

Must not: touch the database, or judge policy (how long a delay is, when a session
ends): the services decide, this only stores.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.store.errors import AlreadyExists
from pillarbox.store.sqlite.core import SqliteCore

T = TypeVar("T")

MAX_LOGIN_STATES = 100_000  # as the in-memory throttles bounded themselves
MAX_WEB_SESSIONS = 10_000  # as web.sessions.SessionStore bounded itself


@dataclass(slots=True)
class _Memory:
    locks: dict[int, tuple[str, float]] = field(default_factory=dict)  # id -> holder, until
    logins: dict[str, LoginState] = field(default_factory=dict)
    # least recently seen first, so the cap drops the longest unused session
    web: OrderedDict[str, WebSessionRecord] = field(default_factory=OrderedDict)


class ClusterStateMixin(SqliteCore):
    """POP3 locks, login-failure records and webmail sessions in memory (see above)."""

    _memory: _Memory | None = None

    def _state(self) -> _Memory:
        if self._memory is None:
            self._memory = _Memory()
        return self._memory

    # --- POP3 maildrop locks (RFC 1939 §4) ---------------------------------------------
    async def lock_maildrop(self, account_id: int, holder: str, until: float) -> bool:
        locks = self._state().locks
        held = locks.get(account_id)
        if held is not None and held[0] != holder and held[1] >= time.time():
            return False
        locks[account_id] = (holder, until)
        return True

    async def unlock_maildrop(self, account_id: int, holder: str) -> None:
        locks = self._state().locks
        held = locks.get(account_id)
        if held is not None and held[0] == holder:
            del locks[account_id]

    # --- login-failure records --------------------------------------------------------
    async def update_login_state(
        self, key: str, update: Callable[[LoginState | None], tuple[LoginState | None, T]]
    ) -> T:
        logins = self._state().logins
        new, result = update(logins.get(key))
        if new is None:
            logins.pop(key, None)
        else:
            if key not in logins and len(logins) >= MAX_LOGIN_STATES:
                _sweep(logins)
            logins[key] = new
        return result

    # --- webmail sessions ---------------------------------------------------------------
    async def add_web_session(self, record: WebSessionRecord) -> None:
        web = self._state().web
        if record.id_hash in web:
            raise AlreadyExists("web session exists")
        while len(web) >= MAX_WEB_SESSIONS:
            web.popitem(last=False)
        web[record.id_hash] = record

    async def get_web_session(self, id_hash: str) -> WebSessionRecord | None:
        return self._state().web.get(id_hash)

    async def touch_web_session(self, id_hash: str, last_seen: float) -> None:
        web = self._state().web
        record = web.get(id_hash)
        if record is not None:
            web[id_hash] = WebSessionRecord(
                record.id_hash, record.account_id, record.csrf, record.created, last_seen
            )
            web.move_to_end(id_hash)

    async def remove_web_session(self, id_hash: str) -> None:
        self._state().web.pop(id_hash, None)

    async def remove_account_web_sessions(self, account_id: int, keep: str) -> list[str]:
        web = self._state().web
        ended = [h for h, r in web.items() if r.account_id == account_id and h != keep]
        for id_hash in ended:
            del web[id_hash]
        return ended


def _sweep(logins: dict[str, LoginState]) -> None:
    """Forget records that say nothing any more; if still full, the tenth that expire
    soonest (bound memory under an attack on many names)."""
    now = time.time()
    for key in [k for k, s in logins.items() if s.expires < now]:
        del logins[key]
    if len(logins) >= MAX_LOGIN_STATES:
        for key in sorted(logins, key=lambda k: logins[k].expires)[: MAX_LOGIN_STATES // 10]:
            del logins[key]
