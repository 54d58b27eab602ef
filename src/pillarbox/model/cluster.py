"""Values of the state that the nodes of one installation share through the store.

With several nodes on one PostgreSQL database a person's next request may reach any
node, so what used to be one process's memory (login failure counts, webmail sessions)
crosses the store boundary as these values. Times are seconds since the epoch (wall
clock, the same on every node given NTP), never `time.monotonic()`, which means nothing
to another machine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoginState:
    """The login-failure record of one throttle key (an account or a client address).

    `next_allowed`: the earliest start of the next held-back attempt (the per-account
    spacing); `trusted`: (client address, time of its last successful login) pairs,
    oldest first; `expires`: after this the record says nothing any more and may be
    forgotten (the janitor deletes such rows)."""

    failures: int = 0
    last_failure: float = 0.0
    next_allowed: float = 0.0
    trusted: tuple[tuple[str, float], ...] = ()
    expires: float = 0.0


@dataclass(frozen=True, slots=True)
class WebSessionRecord:
    """A webmail session as stored: `id_hash` is the hex sha256 of the session id, so
    that a read of the table (a backup, a replica) gives nobody a usable cookie."""

    id_hash: str
    account_id: int
    csrf: str
    created: float
    last_seen: float
