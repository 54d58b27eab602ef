"""One mailbox per special use (RFC 6154 §3 CREATE with USE, like a JMAP role).

Pins: creating a mailbox with a use another mailbox of the account holds (in any case)
raises Conflict and creates nothing; another account, or the same use after its mailbox
was deleted, is fine.
"""

from __future__ import annotations

import pytest

from pillarbox.store.errors import Conflict
from tests.store.conftest import Env


async def test_a_use_is_held_once(env: Env) -> None:
    s = env.store
    account = env.account.id
    with pytest.raises(Conflict):
        await s.create_mailbox(account, "Sent Items", "\\sent")
    assert await s.get_mailbox(account, "Sent Items") is None
    await s.create_mailbox(account, "Starred", "\\Flagged")
    other = await s.add_account("bob@example.org", "$argon2id$dummy")
    assert (await s.create_mailbox(other.id, "Starred", "\\Flagged")).special_use == "\\Flagged"
    await s.delete_mailbox(account, "Sent")
    box = await s.create_mailbox(account, "Sent Items", "\\Sent")
    found = await s.get_special_mailbox(account, "\\Sent")
    assert found is not None and found.id == box.id
