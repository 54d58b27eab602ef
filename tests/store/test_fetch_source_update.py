"""The store contract for editing a fetch source (`update_fetch_source`), run against
every backend in `BACKENDS`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from pillarbox.model.fetch import FetchProtocol, FetchRun, FetchSecurity, RemotePolicy
from pillarbox.store.errors import NotFound
from tests.store.conftest import Env
from tests.store.test_fetch_sources import new_source


async def test_an_edit_replaces_the_settings_and_resumes_the_source(env: Env) -> None:
    """Every setting is replaced; the ciphertext only when a new one is given; both
    failure counts go to zero (a paused source runs again); the run history stays."""
    store = env.store
    added = await store.add_fetch_source(new_source(env.account.id))
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    for _ in range(3):
        await store.record_fetch_run(added.id, FetchRun(at, "", "wrong password", True))
    paused = await store.get_fetch_source(added.id)
    assert paused is not None and paused.paused
    edit = new_source(
        env.account.id,
        protocol=FetchProtocol.POP3,
        host="pop.example.net",
        port=110,
        security=FetchSecurity.STARTTLS,
        username="me2",
        password_secret=b"",
        target_folder="Elsewhere",
        source_folders=(),
        policy=RemotePolicy(),
        interval=900,
    )
    edited = await store.update_fetch_source(added.id, edit)
    assert not edited.paused and edited.auth_failures == 0 and edited.failures == 0
    assert edited.password_secret == added.password_secret  # kept: none given
    assert (edited.protocol, edited.host, edited.port, edited.security) == (
        FetchProtocol.POP3,
        "pop.example.net",
        110,
        FetchSecurity.STARTTLS,
    )
    assert (edited.username, edited.target_folder, edited.source_folders) == (
        "me2",
        "Elsewhere",
        (),
    )
    assert edited.policy == RemotePolicy() and edited.interval == 900
    assert edited.last_error == "wrong password" and edited.last_run_at is not None
    again = await store.update_fetch_source(
        added.id, dataclasses.replace(edit, password_secret=b"new secret")
    )
    assert again.password_secret == b"new secret"
    assert await store.get_fetch_source(added.id) == again


async def test_only_the_owner_edits_a_source(env: Env) -> None:
    store = env.store
    added = await store.add_fetch_source(new_source(env.account.id))
    bob = await store.add_account("bob@example.org", "$argon2id$dummy")
    with pytest.raises(NotFound):
        await store.update_fetch_source(added.id, new_source(bob.id, host="evil.example"))
    with pytest.raises(NotFound):
        await store.update_fetch_source(999_999, new_source(env.account.id))
    assert await store.get_fetch_source(added.id) == added
