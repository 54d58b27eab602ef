"""Password hashing (argon2id) and login checking with slow-down of failures per source
address and per account (`account_throttle`).

Why here: every front-end (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS, the
webmail) must apply the same rules, so none of them checks a password itself.
An unknown user is verified against a dummy hash, so reply and timing do not tell
unknown users from wrong passwords. Failures are logged with the client IP.

The failure counts (per address here, per account in `account_throttle`) live in the
store (`Store.update_login_state`): in memory with the embedded backend, shared by every
node on PostgreSQL, so that an attacker spreading guesses over the nodes behind one
address gets no more of them. If the store cannot be reached the check goes on without
the slow-down (the account lookup fails too, so nobody gets in).

Verified credentials (`credential_cache`): after one successful argon2id check, a keyed
digest of (account id, stored hash, password) is remembered for `credential_cache_ttl`
seconds, and a login whose digest is remembered skips argon2id. Everything else of a
login is the same on a hit: the account is read (so a changed password or a removed
account no longer matches), the account throttle's reservation and the success steps run.
A failure is never remembered, and a wrong password always costs argon2id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pillarbox.model import Account
from pillarbox.model.cluster import LoginState
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.account_throttle import AccountThrottle
from pillarbox.services.credential_cache import (
    CredentialCache,
    CredentialStore,
    LocalCredentialStore,
    new_key,
)
from pillarbox.services.errors import AuthFailed, TempFailure
from pillarbox.store.api import Store
from pillarbox.store.errors import StoreError, StoreUnavailable

log = logging.getLogger("pillarbox.auth")

T = TypeVar("T")

# argon2id (RFC 9106) with argon2-cffi's defaults (t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


# What an unknown user's password is checked against, so that a wrong user costs the same
# argon2id work as a wrong password. Made with the default parameters; recomputed once if
# those ever change.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$C4wXqtypLLlw1xOuEEYWdg$"
    "Jzm+pNwWOvXUKzbX82f9QxJy8sXmdzGEyDOFSYwIprI"
)


# argon2id costs ~64 MiB and a core-second-ish per check. Checks run in their own small
# pool: concurrent logins queue here (bounding memory) instead of filling the default
# executor that file reads and parsing share.
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    """hash_password in the hashing pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@dataclass
class _Failures:
    count: int = 0
    last: float = field(default_factory=time.monotonic)


class FailureThrottle:
    """Delay that grows per IP with each failed login: base * 2**(n-1), capped.

    The synchronous methods keep the counts in this object (monotonic clock); the async
    ones run the same steps on the store's record of the address (wall clock)."""

    def __init__(
        self,
        base: float,
        cap: float,
        window: float,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.base = base
        self.cap = cap
        self.window = window
        self._wall_clock = wall_clock
        self._by_ip: dict[str, _Failures] = {}

    def delay_for(self, ip: str) -> float:
        entry = self._by_ip.get(ip)
        if entry is None or entry.count == 0:
            return 0.0
        if time.monotonic() - entry.last > self.window:
            del self._by_ip[ip]
            return 0.0
        return self._delay_of(entry.count)

    def failed(self, ip: str) -> None:
        entry = self._by_ip.setdefault(ip, _Failures())
        entry.count += 1
        entry.last = time.monotonic()
        if len(self._by_ip) > 100_000:  # bound memory under a distributed attack
            cutoff = time.monotonic() - self.window
            for key in [k for k, v in self._by_ip.items() if v.last < cutoff]:
                del self._by_ip[key]

    def succeeded(self, ip: str) -> None:
        self._by_ip.pop(ip, None)

    # --- in the store (shared by the nodes on PostgreSQL) -----------------------------

    async def record_failure(self, store: Store, ip: str) -> float:
        """`failed`, then `delay_for`, as one step on the store's record of `ip`."""
        now = self._wall_clock()
        return await store.update_login_state(
            self.store_key(ip), lambda state: self.failed_step(state, now)
        )

    async def current_delay(self, store: Store, ip: str) -> float:
        """`delay_for` on the store's record of `ip`."""
        now = self._wall_clock()
        return await store.update_login_state(
            self.store_key(ip), lambda state: self.delay_step(state, now)
        )

    async def record_success(self, store: Store, ip: str) -> None:
        """`succeeded` on the store's record of `ip`."""
        await store.update_login_state(self.store_key(ip), lambda state: (None, None))

    @staticmethod
    def store_key(ip: str) -> str:
        return "ip:" + ip

    def failed_step(self, state: LoginState | None, now: float) -> tuple[LoginState, float]:
        """(the record after one more failure, the delay it earns)."""
        failures = (state.failures if state is not None else 0) + 1
        new = LoginState(failures=failures, last_failure=now, expires=now + self.window)
        return new, self._delay_of(failures)

    def delay_step(self, state: LoginState | None, now: float) -> tuple[LoginState | None, float]:
        """(the record, forgotten once its window has passed; the delay it earns)."""
        if state is None or state.failures == 0:
            return state, 0.0
        if now - state.last_failure > self.window:
            return None, 0.0
        return state, self._delay_of(state.failures)

    def _delay_of(self, failures: int) -> float:
        return float(min(self.cap, self.base * (2 ** (failures - 1))))


class AuthService:
    def __init__(
        self,
        store: Store,
        *,
        fail_delay: float = 0.5,
        fail_delay_max: float = 15.0,
        fail_window: float = 900.0,
        allow_plaintext: bool = False,
        allow_plaintext_loopback: bool = True,
        account_throttle: AccountThrottle | None = None,
        credentials: CredentialStore | None = None,
        credential_key: bytes | None = None,
        credential_ttl: float = 3600.0,
    ) -> None:
        """`credentials`: where verified digests live (several workers share one; None:
        this process's own); `credential_key`: their HMAC key (None: a random one, valid
        for this object's life); `credential_ttl`: seconds, 0 turns the cache off."""
        self._store = store
        self._allow_plaintext = allow_plaintext
        self._allow_plaintext_loopback = allow_plaintext_loopback
        self.throttle = FailureThrottle(fail_delay, fail_delay_max, fail_window)
        self.account_throttle = account_throttle or AccountThrottle(window=fail_window)
        self._dummy_hash = _DUMMY_HASH if not needs_rehash(_DUMMY_HASH) else None
        self.credentials = CredentialCache(
            credentials if credentials is not None else LocalCredentialStore(),
            credential_key if credential_key is not None else new_key(),
            credential_ttl,
        )
        # argon2id checks of a password against an account's hash (not the dummy's):
        # what the cache saves, counted so that tests and profiles can see it.
        self.argon2_checks = 0

    def plaintext_allowed(self, *, tls: bool, loopback: bool) -> bool:
        """May a password be sent in clear on this connection (RFC 8314 §3, RFC 4954 §4)?"""
        return tls or self._allow_plaintext or (loopback and self._allow_plaintext_loopback)

    async def authenticate(self, username: str, password: str, ip: str) -> Account:
        """The account for these credentials, or AuthFailed after the IP's delay."""
        account = None
        malformed = False
        try:
            address = normalize_address(username)
        except InvalidAddress:  # a malformed name is just an unknown user
            address, malformed = username, True
        # Spraying one account from many addresses: attempts on it from addresses it
        # was not used from take turns (account_throttle), before any argon2id work.
        # The reservation and the account's row are independent reads: one round trip
        # of the store's latency for both (on PostgreSQL each is one).
        reserve = self._shared(self.account_throttle.reserve(self._store, address, ip), 0.0)
        if malformed:
            wait = await reserve
        else:
            looked, reserved = await asyncio.gather(
                self._lookup(address), reserve, return_exceptions=True
            )
            if isinstance(looked, BaseException):
                raise looked
            if isinstance(reserved, BaseException):
                raise reserved
            account, wait = looked, reserved
        if wait:
            await asyncio.sleep(wait)  # the spacing itself, not a wait for a condition
        loop = asyncio.get_running_loop()
        if self._dummy_hash is None:  # only if argon2-cffi's default parameters changed
            self._dummy_hash = await loop.run_in_executor(
                _HASHING, hash_password, "pillarbox-dummy"
            )
        if account is not None and self.credentials.verified(
            account.id, account.password_hash, password
        ):
            ok = True  # these credentials passed argon2id within the TTL
        elif account is not None:
            self.argon2_checks += 1
            ok = await loop.run_in_executor(
                _HASHING, verify_password, account.password_hash, password
            )
            if ok:
                self.credentials.remember(account.id, account.password_hash, password)
        else:
            await loop.run_in_executor(_HASHING, verify_password, self._dummy_hash, password)
            ok = False
        if account is not None and ok:
            await asyncio.gather(  # two records, independent: one round trip's latency
                self._shared(self.throttle.record_success(self._store, ip), None),
                self._shared(self.account_throttle.record_success(self._store, address, ip), None),
            )
            return account
        delay = await self._shared(self.throttle.record_failure(self._store, ip), 0.0)
        await self._shared(self.account_throttle.record_failure(self._store, address), None)
        log.warning("authentication failed for %r from %s (delay %.1fs)", address, ip, delay)
        if delay:
            await asyncio.sleep(delay)  # the slow-down itself, not a wait for a condition
        raise AuthFailed()

    async def _lookup(self, address: str) -> Account | None:
        """The account's current row (None: unknown); TempFailure if the store is out
        of reach."""
        try:
            return await self._store.get_account(address)
        except StoreUnavailable as exc:
            # The database is restarting or out of reach: say "try again later",
            # never "wrong password" (a client would ask its user for a new one).
            log.warning("authentication unavailable for %r: %s", address, exc)
            raise TempFailure("Authentication temporarily unavailable") from exc
        except StoreError:
            return None

    async def ip_delay(self, ip: str) -> float:
        """The delay a failed login from `ip` is held back by now (as every node sees it)."""
        return await self._shared(self.throttle.current_delay(self._store, ip), 0.0)

    @staticmethod
    async def _shared(step: Awaitable[T], otherwise: T) -> T:
        """A throttle step on the store; `otherwise` if the store cannot be reached."""
        try:
            return await step
        except StoreError as exc:
            log.warning("login throttle unavailable: %s", exc)
            return otherwise
