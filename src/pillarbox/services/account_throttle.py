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
count. State is in memory, per process (a restart forgets it; several nodes share it
once the PostgreSQL backend lands), and bounded.

Must not: sleep itself (it says how long to wait), or keep per-attempt state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_ACCOUNTS = 100_000
MAX_TRUSTED_PER_ACCOUNT = 16


@dataclass(slots=True)
class _Account:
    failures: int = 0
    last_failure: float = 0.0
    next_slot: float = 0.0  # the earliest start of the next untrusted attempt
    trusted: dict[str, float] = field(default_factory=dict)  # address -> last success


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
    ) -> None:
        self.delay = delay
        self.cap = cap
        self.free = free
        self.window = window
        self.trusted_for = trusted_for
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    def wait_before(self, account: str, ip: str) -> float:
        """Seconds this attempt must wait before its password is checked; reserves the
        attempt's slot, so concurrent attempts from many addresses queue one after the
        other instead of all going at once."""
        state = self._accounts.get(account)
        if state is None:
            return 0.0
        now = self._clock()
        if self._is_trusted(state, ip, now):
            return 0.0
        if state.failures and now - state.last_failure > self.window:
            state.failures = 0
        spacing = self._spacing(state.failures)
        if spacing == 0.0:
            return 0.0
        start = max(now, state.next_slot)
        state.next_slot = start + spacing
        return start - now

    def failed(self, account: str) -> None:
        state = self._accounts.get(account)
        if state is None:
            if len(self._accounts) >= MAX_ACCOUNTS:
                self._sweep()
            state = self._accounts[account] = _Account()
        state.failures += 1
        state.last_failure = self._clock()

    def succeeded(self, account: str, ip: str) -> None:
        """The owner (or whoever knows the password) got in from `ip`: reset the count
        and trust that address for this account."""
        state = self._accounts.get(account)
        if state is None:
            if len(self._accounts) >= MAX_ACCOUNTS:
                self._sweep()
            state = self._accounts[account] = _Account()
        state.failures = 0
        state.next_slot = 0.0
        trusted = state.trusted
        trusted.pop(ip, None)
        trusted[ip] = self._clock()
        while len(trusted) > MAX_TRUSTED_PER_ACCOUNT:
            del trusted[next(iter(trusted))]  # the address that logged in longest ago

    def _spacing(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.cap, self.delay * 2 ** (failures - self.free)))

    def _is_trusted(self, state: _Account, ip: str, now: float) -> bool:
        seen = state.trusted.get(ip)
        return seen is not None and now - seen <= self.trusted_for

    def _sweep(self) -> None:
        """Forget accounts with no recent failure and no trusted address (bound memory
        under an attack on many account names)."""
        now = self._clock()
        for name in [
            name
            for name, s in self._accounts.items()
            if now - s.last_failure > self.window
            and not any(now - t <= self.trusted_for for t in s.trusted.values())
        ]:
            del self._accounts[name]
        if len(self._accounts) >= MAX_ACCOUNTS:  # still full: drop the oldest failures
            oldest = sorted(self._accounts, key=lambda n: self._accounts[n].last_failure)
            for name in oldest[: MAX_ACCOUNTS // 10]:
                del self._accounts[name]
