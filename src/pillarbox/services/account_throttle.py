"""Slowing down password guessing against one account from many source addresses.

The per-IP delay (`auth.FailureThrottle`) does not stop password spraying: an attacker
with many addresses starts each one with no delay. So failures are also counted per
account, and once an account has had `free` failures, every further attempt on it from a
source that is not known to be its owner's waits its turn: attempts are spaced at least
`delay` apart for the account as a whole, the spacing doubling with each failure up to
`cap`, whatever address they come from. Verifying a password costs argon2id time on
both cores, so spacing attempts before the check also protects the machine.

Never a lock-out: the owner's own logins are told apart by their source address. An
address that logged in to the account successfully within `trusted_for` seconds is not
held back by the account's delay (its own per-IP delay still applies), so an attack on
an account does not keep its owner out. A success from anywhere resets the account's
count.

Where the state lives: the policy is a set of pure steps on one account's record
(`model.cluster.LoginState`), run either on this object's own bounded dictionary (the
synchronous methods, with an injectable monotonic clock) or atomically on the store's
record (`Store.update_login_state`, the async methods, wall-clock time) — in memory for
the embedded backend, a table shared by every node on PostgreSQL, so that spreading the
guesses over several nodes does not multiply them. `AuthService` uses the store.

Must not: sleep itself (it says how long to wait), or keep per-attempt state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pillarbox.model.cluster import LoginState
from pillarbox.store.api import Store

MAX_ACCOUNTS = 100_000
MAX_TRUSTED_PER_ACCOUNT = 16
# A success from the address that last logged in to the account leaves its record as it
# is when the trust was refreshed less than this long ago (and nothing else changes): a
# client logging in for every check of its mail would otherwise rewrite the record, a
# store write shared by every node, at each login. Trust lasts `trusted_for` (30 days),
# so ending up to this much earlier changes nothing that matters.
TRUST_REFRESH = 3600.0


def store_key(account: str) -> str:
    """The account's record in the store (client addresses have their own keys)."""
    return "account:" + account


class AccountThrottle:
    """See the module docstring. Times in seconds; `window`: failures older than this
    are forgotten."""

    def __init__(
        self,
        *,
        delay: float = 0.5,
        cap: float = 60.0,
        free: int = 3,
        window: float = 900.0,
        trusted_for: float = 30 * 86400.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.delay = delay
        self.cap = cap
        self.free = free
        self.window = window
        self.trusted_for = trusted_for
        self._clock = clock
        self._wall_clock = wall_clock  # for the store's records, which other nodes read
        self._accounts: dict[str, LoginState] = {}

    # --- in this object's memory ----------------------------------------------------------

    def wait_before(self, account: str, ip: str) -> float:
        """Seconds this attempt must wait before its password is checked; reserves the
        attempt's slot, so concurrent attempts from many addresses queue one after the
        other instead of all going at once."""
        state, wait = self.reserve_step(self._accounts.get(account), ip, self._clock())
        if state is not None:
            self._accounts[account] = state
        return wait

    def failed(self, account: str) -> None:
        if account not in self._accounts and len(self._accounts) >= MAX_ACCOUNTS:
            self._sweep()
        self._accounts[account] = self.failed_step(self._accounts.get(account), self._clock())

    def succeeded(self, account: str, ip: str) -> None:
        """The owner (or whoever knows the password) got in from `ip`: reset the count
        and trust that address for this account."""
        if account not in self._accounts and len(self._accounts) >= MAX_ACCOUNTS:
            self._sweep()
        state = self.succeeded_step(self._accounts.get(account), ip, self._clock())
        self._accounts[account] = state

    # --- in the store (shared by the nodes on PostgreSQL) -----------------------------

    async def reserve(self, store: Store, account: str, ip: str) -> float:
        """`wait_before` on the store's record of the account."""
        now = self._wall_clock()
        return await store.update_login_state(
            store_key(account), lambda state: self.reserve_step(state, ip, now)
        )

    async def record_failure(self, store: Store, account: str) -> None:
        """`failed` on the store's record of the account."""
        now = self._wall_clock()
        await store.update_login_state(
            store_key(account), lambda state: (self.failed_step(state, now), None)
        )

    async def record_success(self, store: Store, account: str, ip: str) -> None:
        """`succeeded` on the store's record of the account."""
        now = self._wall_clock()
        await store.update_login_state(
            store_key(account), lambda state: (self.succeeded_step(state, ip, now), None)
        )

    # --- the policy: pure steps on one account's record ---------------------------------

    def reserve_step(
        self, state: LoginState | None, ip: str, now: float
    ) -> tuple[LoginState | None, float]:
        """(the record after this attempt's reservation, its wait)."""
        if state is None or self._is_trusted(state, ip, now):
            return state, 0.0
        if state.failures and now - state.last_failure > self.window:
            state = replace(state, failures=0)
        spacing = self._spacing(state.failures)
        if spacing == 0.0:
            return state, 0.0
        start = max(now, state.next_allowed)
        return self._expiring(replace(state, next_allowed=start + spacing)), start - now

    def failed_step(self, state: LoginState | None, now: float) -> LoginState:
        state = state or LoginState()
        return self._expiring(replace(state, failures=state.failures + 1, last_failure=now))

    def succeeded_step(self, state: LoginState | None, ip: str, now: float) -> LoginState:
        """(the record after a success from `ip`): the same record (equal, so that the
        store can skip the write) when it is clean and `ip` is its newest trusted address,
        refreshed within TRUST_REFRESH (or a hundredth of `trusted_for` if shorter)."""
        if (
            state is not None
            and state.failures == 0
            and state.next_allowed == 0.0
            and state.trusted
            and state.trusted[-1][0] == ip
            and 0.0 <= now - state.trusted[-1][1] < min(TRUST_REFRESH, self.trusted_for / 100)
        ):
            return state
        state = state or LoginState()
        # Most recent last; beyond the cap the address that logged in longest ago goes.
        trusted = [(a, t) for a, t in state.trusted if a != ip] + [(ip, now)]
        return self._expiring(
            replace(
                state,
                failures=0,
                next_allowed=0.0,
                trusted=tuple(trusted[-MAX_TRUSTED_PER_ACCOUNT:]),
            )
        )

    def _expiring(self, state: LoginState) -> LoginState:
        """The record with the time after which it says nothing: no failure within the
        window, no reserved slot ahead, no address still trusted."""
        expires = max(
            [state.last_failure + self.window, state.next_allowed]
            + [t + self.trusted_for for _, t in state.trusted]
        )
        return replace(state, expires=expires)

    def _spacing(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.delay * 2 ** (failures - self.free)))

    def _is_trusted(self, state: LoginState, ip: str, now: float) -> bool:
        seen = dict(state.trusted).get(ip)
        return seen is not None and now - seen <= self.trusted_for

    def _sweep(self) -> None:
        """Forget accounts with no recent failure and no trusted address (bound memory
        under an attack on many account names)."""
        now = self._clock()
        for name in [
            name
            for name, s in self._accounts.items()
            if now - s.last_failure > self.window
            and not any(now - t <= self.trusted_for for _, t in s.trusted)
        ]:
            del self._accounts[name]
        if len(self._accounts) >= MAX_ACCOUNTS:  # still full: drop the oldest failures
            oldest = sorted(self._accounts, key=lambda n: self._accounts[n].last_failure)
            for name in oldest[: MAX_ACCOUNTS // 10]:
                del self._accounts[name]
