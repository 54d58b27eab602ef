"""Password hashing (argon2id) and login checking with slow-down of failures per source
address and per account (`account_throttle`).

Why here: every front-end (SMTP AUTH, IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS, the
webmail) must apply the same rules, so none of them checks a password itself.
An unknown user is verified against a dummy hash, so reply and timing do not tell
unknown users from wrong passwords. Failures are logged with the client IP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pillarbox.model import Account
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.account_throttle import AccountThrottle
from pillarbox.services.errors import AuthFailed
from pillarbox.store.api import Store
from pillarbox.store.errors import StoreError

log = logging.getLogger("pillarbox.auth")

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
    """Delay that grows per IP with each failed login: base * 2**(n-1), capped."""

    def __init__(self, base: float, cap: float, window: float) -> None:
        self.base = base
        self.cap = cap
        self.window = window
        self._by_ip: dict[str, _Failures] = {}

    def delay_for(self, ip: str) -> float:
        entry = self._by_ip.get(ip)
        if entry is None or entry.count == 0:
            return 0.0
        if time.monotonic() - entry.last > self.window:
            del self._by_ip[ip]
            return 0.0
        return float(min(self.cap, self.base * (2 ** (entry.count - 1))))

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
    ) -> None:
        self._store = store
        self._allow_plaintext = allow_plaintext
        self._allow_plaintext_loopback = allow_plaintext_loopback
        self.throttle = FailureThrottle(fail_delay, fail_delay_max, fail_window)
        self.account_throttle = account_throttle or AccountThrottle(window=fail_window)
        self._dummy_hash = _DUMMY_HASH if not needs_rehash(_DUMMY_HASH) else None

    def plaintext_allowed(self, *, tls: bool, loopback: bool) -> bool:
        """May a password be sent in clear on this connection (RFC 8314 §3, RFC 4954 §4)?"""
        return tls or self._allow_plaintext or (loopback and self._allow_plaintext_loopback)

    async def authenticate(self, username: str, password: str, ip: str) -> Account:
        """The account for these credentials, or AuthFailed after the IP's delay."""
        account = None
        try:
            address = normalize_address(username)
        except InvalidAddress:  # a malformed name is just an unknown user
            address = username
        else:
            try:
                account = await self._store.get_account(address)
            except StoreError:
                account = None
        # Spraying one account from many addresses: attempts on it from addresses it
        # was not used from take turns (account_throttle), before any argon2id work.
        wait = self.account_throttle.wait_before(address, ip)
        if wait:
            await asyncio.sleep(wait)  # the spacing itself, not a wait for a condition
        loop = asyncio.get_running_loop()
        if self._dummy_hash is None:  # only if argon2-cffi's default parameters changed
            self._dummy_hash = await loop.run_in_executor(
                _HASHING, hash_password, "pillarbox-dummy"
            )
        stored = account.password_hash if account is not None else self._dummy_hash
        ok = await loop.run_in_executor(_HASHING, verify_password, stored, password)
        if account is not None and ok:
            self.throttle.succeeded(ip)
            self.account_throttle.succeeded(address, ip)
            return account
        self.throttle.failed(ip)
        self.account_throttle.failed(address)
        delay = self.throttle.delay_for(ip)
        log.warning("authentication failed for %r from %s (delay %.1fs)", address, ip, delay)
        if delay:
            await asyncio.sleep(delay)  # the slow-down itself, not a wait for a condition
        raise AuthFailed()
