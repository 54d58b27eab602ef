"""The state the nodes share (POP3 maildrop leases, login-failure records, webmail
sessions): the contract on both backends, and on PostgreSQL two stores with different
node ids on one database, as two nodes behind a load balancer run.

Pins: a lease keeps other holders out until it expires or its holder ends it, and the
holder may renew it; login-failure updates are atomic, so concurrent attempts on one
account from both nodes reserve distinct slots; a failure counted on one node slows the
next attempt on the other; a web session made on one node is valid on the other and
ends on both when ended on either.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.services.account_throttle import AccountThrottle
from pillarbox.services.auth import FailureThrottle
from pillarbox.services.pop import PopService
from pillarbox.services.web_sessions import WebSessionTable
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import AlreadyExists
from pillarbox.store.postgres import PgStore
from pillarbox.web.sessions import SessionStore, id_hash
from tests import pg

ALICE = "alice@example.org"


async def an_account(store: Store, address: str = ALICE) -> int:
    """An account id (web sessions refer to accounts)."""
    if await store.get_domain("example.org") is None:
        await store.add_domain("example.org")
    return (await store.add_account(address, "$argon2id$dummy")).id


async def state_of(store: Store, key: str) -> LoginState | None:
    return await store.update_login_state(key, lambda state: (state, state))


# --- the contract, on both backends ---------------------------------------------------


async def test_maildrop_lease_keeps_others_out_until_it_ends_or_expires(store: Store) -> None:
    later = time.time() + 120
    assert await store.lock_maildrop(7, "a:1", later)
    assert not await store.lock_maildrop(7, "b:1", later)
    assert await store.lock_maildrop(7, "a:1", later + 30)  # a renewal
    assert await store.lock_maildrop(8, "b:1", later)  # another maildrop is free
    await store.unlock_maildrop(7, "b:1")  # not b's: nothing happens
    assert not await store.lock_maildrop(7, "b:1", later)
    await store.unlock_maildrop(7, "a:1")
    assert await store.lock_maildrop(7, "b:1", later)
    # A lease its holder stopped renewing (its node died) frees itself.
    assert await store.lock_maildrop(9, "a:2", time.time() - 1)
    assert await store.lock_maildrop(9, "b:2", later)
    assert not await store.lock_maildrop(9, "a:2", later)


async def test_maildrop_lock_is_taken_once_by_racing_sessions(store: Store) -> None:
    later = time.time() + 120
    got = await asyncio.gather(*(store.lock_maildrop(3, f"n:{i}", later) for i in range(8)))
    assert sum(got) == 1


async def test_login_state_is_replaced_and_deleted(store: Store) -> None:
    assert await state_of(store, "account:x") is None
    first = LoginState(3, 100.5, 101.5, (("192.0.2.1", 99.0), ("192.0.2.2", 100.0)), 1000.0)
    assert await store.update_login_state("account:x", lambda s: (first, "written")) == "written"
    assert await state_of(store, "account:x") == first
    second = LoginState(failures=4, last_failure=200.0, expires=2000.0)
    await store.update_login_state("account:x", lambda s: (second, None))
    assert await state_of(store, "account:x") == second
    assert await state_of(store, "ip:192.0.2.1") is None  # keys are apart
    await store.update_login_state("account:x", lambda s: (None, None))
    assert await state_of(store, "account:x") is None
    await store.update_login_state("account:gone", lambda s: (None, None))  # nothing there


async def test_login_state_updates_of_one_key_do_not_interleave(store: Store) -> None:
    def bump(state: LoginState | None) -> tuple[LoginState, int]:
        failures = (state.failures if state else 0) + 1
        return LoginState(failures=failures), failures

    seen = await asyncio.gather(*(store.update_login_state("k", bump) for _ in range(20)))
    assert sorted(seen) == list(range(1, 21))
    state = await state_of(store, "k")
    assert state is not None and state.failures == 20


async def test_web_sessions_are_stored_touched_and_ended(store: Store) -> None:
    alice, bob = await an_account(store), await an_account(store, "bob@example.org")
    one = WebSessionRecord("h1", alice, "csrf1", 1000.0, 1000.0)
    two = WebSessionRecord("h2", alice, "csrf2", 1001.0, 1001.0)
    three = WebSessionRecord("h3", bob, "csrf3", 1002.0, 1002.0)
    for record in (one, two, three):
        await store.add_web_session(record)
    with pytest.raises(AlreadyExists):
        await store.add_web_session(one)
    assert await store.get_web_session("h1") == one
    assert await store.get_web_session("nope") is None
    await store.touch_web_session("h1", 1500.0)
    await store.touch_web_session("nope", 1500.0)  # gone: nothing
    touched = await store.get_web_session("h1")
    assert touched is not None and touched.last_seen == 1500.0 and touched.created == 1000.0
    assert await store.remove_account_web_sessions(alice, keep="h1") == ["h2"]
    assert await store.get_web_session("h2") is None
    assert await store.get_web_session("h3") == three  # another account's
    await store.remove_web_session("h1")
    await store.remove_web_session("h1")  # again: nothing
    assert await store.get_web_session("h1") is None


# --- two nodes on one PostgreSQL database ---------------------------------------------


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[PgStore, PgStore]]:
    """Two stores with different node ids on one database, each with its own bus."""
    dsn = pg.database(str(tmp_path / "cluster"))
    a = PgStore(dsn, bus=InProcessChangeBus(), node_id="node-a", pool_min=1, pool_max=4)
    b = PgStore(dsn, bus=InProcessChangeBus(), node_id="node-b", pool_min=1, pool_max=4)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_two_nodes_share_the_maildrop_lock(nodes: tuple[PgStore, PgStore]) -> None:
    a, b = nodes
    pop_a, pop_b = PopService(a, node_id=a.node_id), PopService(b, node_id=b.node_id)
    on_a = pop_a.new_holder()
    assert on_a.startswith("node-a:") and on_a != pop_a.new_holder()
    assert await pop_a.renew(7, on_a)
    assert await pop_b.is_locked(7)
    assert not await pop_b.renew(7, pop_b.new_holder())  # POP3 would say -ERR [IN-USE]
    assert await pop_a.is_locked(7)  # the probe kept nobody out
    # Node A dies: its lease is not renewed and expires (here: at once).
    assert await a.lock_maildrop(7, on_a, time.time() - 1)
    on_b = pop_b.new_holder()
    assert await pop_b.renew(7, on_b)
    assert not await pop_a.renew(7, on_a)  # A's old session lost it
    await pop_b.release(7, on_b)
    assert not await pop_a.is_locked(7)
    assert await pop_a.renew(7, pop_a.new_holder())


async def test_a_failure_on_one_node_slows_the_other(nodes: tuple[PgStore, PgStore]) -> None:
    a, b = nodes
    per_ip = FailureThrottle(0.5, 4.0, 900.0)
    assert await per_ip.current_delay(b, "192.0.2.9") == 0.0
    assert await per_ip.record_failure(a, "192.0.2.9") == 0.5
    assert await per_ip.record_failure(b, "192.0.2.9") == 1.0
    assert await per_ip.current_delay(a, "192.0.2.9") == 1.0
    await per_ip.record_success(a, "192.0.2.9")
    assert await per_ip.current_delay(b, "192.0.2.9") == 0.0

    account = AccountThrottle(delay=1.0, cap=8.0, free=3, window=900.0)
    await account.record_success(a, ALICE, "192.0.2.7")  # the owner's address
    for n in range(3):
        assert await account.reserve(a if n % 2 else b, ALICE, f"198.51.100.{n}") == 0.0
        await account.record_failure(a if n % 2 else b, ALICE)
    # Guesses from new addresses, at once, over both nodes: they take turns.
    waits = await asyncio.gather(
        *(account.reserve((a, b)[n % 2], ALICE, f"203.0.113.{n}") for n in range(6))
    )
    assert [round(w) for w in sorted(waits)] == [0, 1, 2, 3, 4, 5]
    assert await account.reserve(b, ALICE, "192.0.2.7") == 0.0  # the owner is not held back
    await account.record_success(b, ALICE, "192.0.2.7")
    assert await account.reserve(a, ALICE, "203.0.113.99") == 0.0  # a success resets


async def test_a_web_session_made_on_one_node_is_valid_on_the_other(
    nodes: tuple[PgStore, PgStore],
) -> None:
    a, b = nodes
    account_id = await an_account(a)
    on_a = SessionStore(table=WebSessionTable(a))
    on_b = SessionStore(table=WebSessionTable(b))
    account = await a.get_account_by_id(account_id)
    assert account is not None
    session = await on_a.create(account)
    seen = await on_b.get(session.id)
    assert seen is not None and seen.account.id == account_id and seen.csrf == session.csrf
    assert await b.get_web_session(session.id) is None  # only the hash is stored
    assert await b.get_web_session(id_hash(session.id)) is not None
    await on_b.end(session.id)
    assert await on_a.get(session.id) is None  # signed out everywhere at once
    # A password change on B ends the account's other sessions on A too.
    kept, other = await on_a.create(account), await on_a.create(account)
    assert await on_b.get(kept.id) is not None
    assert await on_b.end_others(account_id, keep=kept.id) == []  # B served neither
    assert await on_a.get(other.id) is None and await on_a.get(kept.id) is not None
