"""The store contract for trusted image senders, run against every backend in `BACKENDS`.

Pins: adding is idempotent; each account has its own list (one account's trust says
nothing about another's); removing works and removing an absent one is no error; the
list goes with its account; adding for an account that is gone is NotFound; the list
survives closing and reopening the store.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pillarbox.store.api import Store
from pillarbox.store.errors import NotFound
from tests.store.conftest import Env


async def test_add_check_list_remove(env: Env) -> None:
    store, alice = env.store, env.account.id
    bob = (await store.add_account("bob@example.org", "$argon2id$dummy")).id
    assert await store.is_image_sender(alice, "news@shop.test") is False
    await store.add_image_sender(alice, "news@shop.test")
    await store.add_image_sender(alice, "news@shop.test")
    await store.add_image_sender(alice, "a@shop.test")
    assert await store.is_image_sender(alice, "news@shop.test") is True
    assert await store.list_image_senders(alice) == ["a@shop.test", "news@shop.test"]
    assert await store.is_image_sender(bob, "news@shop.test") is False
    assert await store.list_image_senders(bob) == []
    await store.remove_image_sender(alice, "news@shop.test")
    await store.remove_image_sender(alice, "never@shop.test")
    assert await store.list_image_senders(alice) == ["a@shop.test"]


async def test_goes_with_the_account(env: Env) -> None:
    store = env.store
    bob = (await store.add_account("bob@example.org", "$argon2id$dummy")).id
    await store.add_image_sender(bob, "news@shop.test")
    await store.remove_account("bob@example.org")
    assert await store.list_image_senders(bob) == []
    with pytest.raises(NotFound):
        await store.add_image_sender(bob, "news@shop.test")


async def test_survives_reopening(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.open()
    try:
        await store.add_domain("example.org")
        account = await store.add_account("alice@example.org", "$argon2id$dummy")
        await store.add_image_sender(account.id, "news@shop.test")
    finally:
        await store.close()
    again = make_store()
    await again.open()
    try:
        assert await again.is_image_sender(account.id, "news@shop.test") is True
    finally:
        await again.close()
