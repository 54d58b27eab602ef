"""The store contract for identities, run against every backend in `BACKENDS`."""

from __future__ import annotations

import pytest

from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.store.errors import AlreadyExists, NotFound
from tests.store.conftest import Env


async def test_identities_are_kept_in_order_per_account(env: Env) -> None:
    """Identities read back as added, in the order added, and only for their account;
    one per (account, address)."""
    store = env.store
    first = await store.add_identity(
        NewIdentity(env.account.id, "alice@example.org", "Alice", "Alice\nExample Org")
    )
    second = await store.add_identity(NewIdentity(env.account.id, "info@example.org"))
    assert first.signature == "Alice\nExample Org" and first.display_name == "Alice"
    assert second.display_name == "" and second.signature == ""
    assert await store.list_identities(env.account.id) == [first, second]
    bob = await store.add_account("bob@example.org", "$argon2id$dummy")
    assert await store.list_identities(bob.id) == []
    # Another account may have an identity for the same address (the service decides).
    await store.add_identity(NewIdentity(bob.id, "info@example.org"))
    with pytest.raises(AlreadyExists):
        await store.add_identity(NewIdentity(env.account.id, "info@example.org", "Again"))
    with pytest.raises(NotFound):
        await store.add_identity(NewIdentity(999_999, "x@example.org"))


async def test_only_the_owner_changes_or_removes_an_identity(env: Env) -> None:
    """Update and remove name the account: another account's id is NotFound and leaves
    the identity as it was; an update to an address the account already has is
    AlreadyExists."""
    store = env.store
    mine = await store.add_identity(NewIdentity(env.account.id, "alice@example.org", "A"))
    other = await store.add_identity(NewIdentity(env.account.id, "info@example.org"))
    bob = await store.add_account("bob@example.org", "$argon2id$dummy")
    changed = await store.update_identity(
        Identity(mine.id, env.account.id, "alice@example.org", "Alice L.", "-- \nbye")
    )
    assert changed == Identity(mine.id, env.account.id, "alice@example.org", "Alice L.", "-- \nbye")
    with pytest.raises(NotFound):
        await store.update_identity(Identity(mine.id, bob.id, "alice@example.org", "Mallory"))
    with pytest.raises(NotFound):
        await store.remove_identity(bob.id, mine.id)
    with pytest.raises(AlreadyExists):
        await store.update_identity(Identity(other.id, env.account.id, "alice@example.org"))
    assert await store.list_identities(env.account.id) == [changed, other]
    await store.remove_identity(env.account.id, mine.id)
    assert await store.list_identities(env.account.id) == [other]
    with pytest.raises(NotFound):
        await store.remove_identity(env.account.id, mine.id)


async def test_identities_go_with_their_account(env: Env) -> None:
    store = env.store
    await store.add_identity(NewIdentity(env.account.id, "alice@example.org"))
    await store.remove_account("alice@example.org")
    assert await store.list_identities(env.account.id) == []
