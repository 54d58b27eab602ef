"""The verified-credentials cache (issue 18) on real stores (SQLite and PostgreSQL): a
second login skips argon2id; a password change or the account's removal refuses the old
password at once although it was remembered; a wrong password is never let in and still
slows down; entries expire after the TTL; TTL 0 turns the cache off.

argon2id runs are counted by `AuthService.argon2_checks` (deterministic, unlike timing).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pillarbox.services.accounts import AccountService
from pillarbox.services.auth import AuthService
from pillarbox.services.credential_cache import (
    CredentialCache,
    LocalCredentialStore,
    new_key,
)
from pillarbox.services.errors import AuthFailed
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from tests.store.backends import BACKENDS

ALICE = "alice@example.test"
PASSWORD = "correct horse battery"
IP = "192.0.2.10"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    bus = InProcessChangeBus()
    s = BACKENDS[str(request.param)](tmp_path / "data", bus)
    await s.open()
    try:
        accounts = AccountService(s)
        await accounts.add_domain("example.test")
        await accounts.add_user(ALICE, PASSWORD)
        yield s
    finally:
        await s.close()
        bus.close()


def service(store: Store, **kwargs: Any) -> AuthService:
    # Small delays: the throttle's sleeps are real, and these tests count, not time, them.
    return AuthService(store, fail_delay=0.01, fail_delay_max=0.08, **kwargs)


async def test_the_second_login_skips_argon2id(store: Store) -> None:
    auth = service(store)
    first = await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 1
    for _ in range(3):
        again = await auth.authenticate(ALICE.upper(), PASSWORD, "192.0.2.99")
        assert again.id == first.id
    assert auth.argon2_checks == 1


async def test_a_password_change_refuses_the_cached_old_password_at_once(store: Store) -> None:
    auth = service(store)
    await auth.authenticate(ALICE, PASSWORD, IP)
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 1
    await AccountService(store).set_password(ALICE, "a new and longer secret")
    with pytest.raises(AuthFailed):
        await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 2  # the old password was checked against the new hash
    account = await auth.authenticate(ALICE, "a new and longer secret", IP)
    assert account.address == ALICE
    await auth.authenticate(ALICE, "a new and longer secret", IP)
    assert auth.argon2_checks == 3  # the new one is remembered in its turn


async def test_a_removed_account_is_refused_although_cached(store: Store) -> None:
    auth = service(store)
    await auth.authenticate(ALICE, PASSWORD, IP)
    await AccountService(store).remove_user(ALICE)
    with pytest.raises(AuthFailed):
        await auth.authenticate(ALICE, PASSWORD, IP)
    # Re-created with the same password: a new hash (new salt), so argon2id runs again.
    await AccountService(store).add_user(ALICE, PASSWORD)
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 2


async def test_a_wrong_password_after_a_cached_one_fails_and_is_throttled(store: Store) -> None:
    auth = service(store)
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert await auth.ip_delay(IP) == 0.0
    for expected in (0.01, 0.02):
        with pytest.raises(AuthFailed):
            await auth.authenticate(ALICE, PASSWORD + "x", IP)
        assert await auth.ip_delay(IP) == expected
    assert auth.argon2_checks == 3  # every wrong password costs argon2id
    # A cached success still runs the success steps: the address's delay is reset.
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 3
    assert await auth.ip_delay(IP) == 0.0


async def test_a_cached_login_still_takes_its_turn_on_a_sprayed_account(store: Store) -> None:
    """The per-account spacing applies before the cache is consulted, as before argon2id:
    a remembered password from an address the account was not used from waits its turn."""
    auth = service(store)
    auth.account_throttle.free = 1
    auth.account_throttle.delay = 0.3
    auth.account_throttle.cap = 0.3
    await auth.authenticate(ALICE, PASSWORD, "198.51.100.1")  # remembered, address trusted
    for n in range(2):
        with pytest.raises(AuthFailed):
            await auth.authenticate(ALICE, "wrong", f"203.0.113.{n}")
    checks = auth.argon2_checks
    # Whatever the wrong passwords' argon2id took, .50 takes the next slot (its wait may
    # be 0 on a slow machine), so the cached login from .51 gets the one after it.
    first = await auth.account_throttle.reserve(store, ALICE, "203.0.113.50")
    start = time.monotonic()
    await auth.authenticate(ALICE, PASSWORD, "203.0.113.51")
    assert time.monotonic() - start >= first + 0.2  # the slot after the one just reserved
    assert auth.argon2_checks == checks  # and then the cache answered


async def test_remembered_credentials_expire_after_the_ttl(store: Store) -> None:
    auth = service(store)
    clock = Clock()
    auth.credentials = CredentialCache(LocalCredentialStore(), new_key(), 60.0, clock=clock)
    await auth.authenticate(ALICE, PASSWORD, IP)
    clock.now += 59.0
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 1
    clock.now += 1.5  # 60.5 s after the verification
    await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 2


async def test_ttl_zero_turns_the_cache_off(store: Store) -> None:
    auth = service(store, credential_ttl=0.0)
    for _ in range(2):
        await auth.authenticate(ALICE, PASSWORD, IP)
    assert auth.argon2_checks == 2


async def test_workers_sharing_a_store_and_key_share_verifications(store: Store) -> None:
    """Two services (as two workers) over one credential store and key: a verification
    in one serves the other; another key (another server start) does not match."""
    shared, key = LocalCredentialStore(), new_key()
    one = service(store, credentials=shared, credential_key=key)
    two = service(store, credentials=shared, credential_key=key)
    await one.authenticate(ALICE, PASSWORD, IP)
    await two.authenticate(ALICE, PASSWORD, IP)
    assert (one.argon2_checks, two.argon2_checks) == (1, 0)
    three = service(store, credentials=shared)
    await three.authenticate(ALICE, PASSWORD, IP)
    assert three.argon2_checks == 1


def test_the_digest_binds_account_hash_and_password_and_hides_the_password() -> None:
    cache = CredentialCache(LocalCredentialStore(), b"k" * 32, 10.0)
    base = cache.digest(1, "$argon2id$h", "pw")
    assert len(base) == 32 and b"pw" not in base
    assert base != cache.digest(2, "$argon2id$h", "pw")
    assert base != cache.digest(1, "$argon2id$h2", "pw")
    assert base != cache.digest(1, "$argon2id$h", "pw2")
    # Length prefixes: moving bytes from one part into the next changes the digest.
    assert cache.digest(1, "ab", "c") != cache.digest(1, "a", "bc")
    assert (
        CredentialCache(LocalCredentialStore(), b"j" * 32, 10.0).digest(1, "$argon2id$h", "pw")
        != base
    )


def test_the_local_store_expires_and_stays_within_its_bound() -> None:
    local = LocalCredentialStore(max_entries=3)
    for n in range(5):
        local.add(bytes([n]) * 32, expires=100.0 + n)
    assert len(local) == 3
    assert not local.contains(bytes([0]) * 32, 0.0)  # the oldest went first
    assert local.contains(bytes([4]) * 32, 103.9)
    assert not local.contains(bytes([4]) * 32, 104.0)  # expired at its time, and dropped
    assert len(local) == 2
    with pytest.raises(ValueError):
        LocalCredentialStore(max_entries=0)
