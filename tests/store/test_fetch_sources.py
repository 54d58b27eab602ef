"""The store contract for fetch sources, run against every backend in `BACKENDS`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pillarbox.model.fetch import (
    FetchedCopy,
    FetchedRecord,
    FetchFolderState,
    FetchProtocol,
    FetchRun,
    FetchSecurity,
    NewFetchSource,
    RemoteAction,
    RemotePolicy,
)
from pillarbox.store.errors import AlreadyExists, NotFound, QuotaExceeded
from tests.store.conftest import Env, dummy_meta, write_blob

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def new_source(account_id: int, **changes: object) -> NewFetchSource:
    values: dict[str, object] = {
        "account_id": account_id,
        "protocol": FetchProtocol.IMAP,
        "host": "imap.example.net",
        "port": 993,
        "security": FetchSecurity.TLS,
        "username": "me",
        "password_secret": b"\x00ciphertext\xff",
        "target_folder": "INBOX",
        "source_folders": ("INBOX", "Lists/python"),
        "policy": RemotePolicy(RemoteAction.DELETE_AFTER, 7),
        "interval": 600,
    }
    values.update(changes)
    return NewFetchSource(**values)  # type: ignore[arg-type]


@dataclass
class _Delivery:
    mailbox_id: int
    blob: object
    meta: object
    flags: frozenset[str]
    internaldate: datetime


async def test_sources_are_kept_as_given_and_go_with_their_account(env: Env) -> None:
    """A source reads back exactly as added (the ciphertext byte for byte), is listed per
    account, removable only by its owner, and removed with the account."""
    store = env.store
    added = await store.add_fetch_source(new_source(env.account.id))
    assert added.password_secret == b"\x00ciphertext\xff"
    assert added.source_folders == ("INBOX", "Lists/python")
    assert added.policy == RemotePolicy(RemoteAction.DELETE_AFTER, 7)
    assert (added.last_run_at, added.last_error, added.auth_failures) == (None, "", 0)
    assert await store.get_fetch_source(added.id) == added
    assert await store.list_fetch_sources(env.account.id) == [added]
    other = await store.add_account("bob@example.org", "h")
    assert await store.list_fetch_sources(other.id) == []
    with pytest.raises(NotFound):
        await store.remove_fetch_source(other.id, added.id)
    with pytest.raises(NotFound):
        await store.add_fetch_source(new_source(9999))
    second = await store.add_fetch_source(new_source(other.id, protocol=FetchProtocol.POP3))
    await store.remove_account("bob@example.org")
    assert await store.get_fetch_source(second.id) is None
    await store.remove_fetch_source(env.account.id, added.id)
    assert await store.list_fetch_sources() == []


async def test_runs_count_consecutive_authentication_failures(env: Env) -> None:
    """An auth failure adds one, another error leaves the count and a success resets it;
    an error stays shown until a run succeeds."""
    store = env.store
    source = await store.add_fetch_source(new_source(env.account.id))
    s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "bad password", True))
    assert (s.auth_failures, s.last_error, s.last_error_at) == (1, "bad password", T0)
    s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "unreachable"))
    assert (s.auth_failures, s.last_error) == (1, "unreachable")
    s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "bad password", True))
    assert s.auth_failures == 2
    later = T0 + timedelta(minutes=5)
    s = await store.record_fetch_run(source.id, FetchRun(later, "2 new"))
    assert (s.auth_failures, s.last_error, s.last_error_at) == (0, "", None)
    assert (s.last_result, s.last_run_at) == ("2 new", later)
    with pytest.raises(NotFound):
        await store.record_fetch_run(9999, FetchRun(T0, "x"))


async def test_failures_pause_and_resume(env: Env) -> None:
    """Every failure counts for the back-off, authentication failures also for the pause
    (three in a row); a success or a resume zeroes both; only the owner resumes."""
    store = env.store
    source = await store.add_fetch_source(new_source(env.account.id))
    s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "unreachable"))
    assert (s.failures, s.auth_failures, s.paused) == (1, 0, False)
    for _ in range(3):
        s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "bad", True))
    assert (s.failures, s.auth_failures, s.paused) == (4, 3, True)
    with pytest.raises(NotFound):
        await store.resume_fetch_source(env.account.id + 1, source.id)
    s = await store.resume_fetch_source(env.account.id, source.id)
    assert (s.failures, s.auth_failures, s.paused, s.last_error) == (0, 0, False, "bad")
    s = await store.record_fetch_run(source.id, FetchRun(T0, "failed", "unreachable"))
    s = await store.record_fetch_run(source.id, FetchRun(T0, "1 new"))
    assert (s.failures, s.auth_failures) == (0, 0)


async def test_a_claim_keeps_other_nodes_off_until_it_ends(env: Env) -> None:
    """One node per source: a claim holds against other holders until it expires or is
    released; its holder may claim again; a source that is gone cannot be claimed."""
    store = env.store
    source = await store.add_fetch_source(new_source(env.account.id))
    soon = datetime.now(UTC) + timedelta(minutes=10)
    assert (await store.claim_fetch_source(source.id, "a", soon)) is not None
    assert await store.claim_fetch_source(source.id, "b", soon) is None
    assert await store.claim_fetch_source(source.id, "a", soon) is not None
    await store.release_fetch_source(source.id, "b")  # not b's: nothing happens
    assert await store.claim_fetch_source(source.id, "b", soon) is None
    await store.release_fetch_source(source.id, "a")
    assert await store.claim_fetch_source(source.id, "b", soon) is not None
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await store.claim_fetch_source(source.id, "b", past) is not None  # expired at once
    assert await store.claim_fetch_source(source.id, "a", soon) is not None
    assert await store.claim_fetch_source(9999, "a", soon) is None


async def test_delivery_and_record_are_one_transaction(env: Env) -> None:
    """`deliver_fetched` stores the copy and its record together: over quota, neither is
    kept; otherwise both, and the folder's last UID moves forward (never back)."""
    store = env.store
    source = await store.add_fetch_source(new_source(env.account.id))
    data = b"Subject: x\r\n\r\nbody\r\n"

    async def deliver(uid: int) -> None:
        blob = await write_blob(store, data)
        record = FetchedRecord(source.id, "INBOX", str(uid), f"d{uid}", T0, 77, uid)
        await store.deliver_fetched(
            _Delivery(env.inbox.id, blob, dummy_meta(data), frozenset({"\\Seen"}), T0),  # type: ignore[arg-type]
            record,
        )

    await store.set_quota("alice@example.org", len(data) * 2)
    await deliver(5)
    await deliver(3)
    with pytest.raises(AlreadyExists):  # a second run that fetched it meanwhile
        await deliver(3)
    with pytest.raises(QuotaExceeded):
        await deliver(9)
    assert len(await store.uids(env.inbox.id)) == 2
    entries = await store.fetched(source.id, "INBOX")
    assert sorted(e.remote_id for e in entries) == ["3", "5"]
    assert all(e.uidvalidity == 77 for e in entries)
    assert await store.fetch_folders(source.id) == [FetchFolderState("INBOX", 77, 5)]
    flags = await store.fetch_flags(env.inbox.id, await store.uids(env.inbox.id))
    assert all("\\Seen" in f.flags for f in flags)
    # Each record knows its copy (for carrying flags); other UIDVALIDITYs are not listed.
    local = await store.uids(env.inbox.id)
    copies = await store.fetched_copies(source.id, "INBOX", 77)
    assert copies == [
        FetchedCopy(3, env.inbox.id, local[1], None),
        FetchedCopy(5, env.inbox.id, local[0], None),
    ]
    await store.set_fetched_flags(source.id, "INBOX", 77, {5: frozenset({"\\Flagged"})})
    copies = await store.fetched_copies(source.id, "INBOX", 77)
    assert [c.remote_flags for c in copies] == [None, frozenset({"\\Flagged"})]
    assert await store.fetched_copies(source.id, "INBOX", 78) == []
    # A message whose source went meanwhile is not stored either.
    await store.remove_fetch_source(env.account.id, source.id)
    with pytest.raises(NotFound):
        await deliver(10)
    assert len(await store.uids(env.inbox.id)) == 2


async def test_folder_state_follows_a_new_uidvalidity(env: Env) -> None:
    """A record under another UIDVALIDITY restarts the folder's last UID; old records can
    be forgotten all at once, and single ones by id; POP3 records have no UIDVALIDITY."""
    store = env.store
    source = await store.add_fetch_source(new_source(env.account.id))
    await store.mark_fetched([FetchedRecord(source.id, "INBOX", "40", "a", T0, 1, 40)])
    await store.mark_fetched([FetchedRecord(source.id, "INBOX", "2", "b", T0, 2, 2)])
    assert await store.fetch_folders(source.id) == [FetchFolderState("INBOX", 2, 2)]
    await store.set_fetch_folder(source.id, FetchFolderState("INBOX", 2, 9, 1234))
    assert await store.fetch_folders(source.id) == [FetchFolderState("INBOX", 2, 9, 1234)]
    await store.mark_fetched([FetchedRecord(source.id, "INBOX", "12", "c", T0, 2, 12)])
    assert await store.fetch_folders(source.id) == [FetchFolderState("INBOX", 2, 12, 1234)]
    await store.forget_fetched(source.id, "INBOX", [], keep_uidvalidity=2)
    assert sorted(e.remote_id for e in await store.fetched(source.id, "INBOX")) == ["12", "2"]
    await store.mark_fetched([FetchedRecord(source.id, "", "UIDL-a", "h", T0)])
    await store.mark_fetched([FetchedRecord(source.id, "", "UIDL-a", "h", T0)])  # again: no-op
    pop = await store.fetched(source.id, "")
    assert [(e.remote_id, e.uidvalidity, e.fetched_at) for e in pop] == [("UIDL-a", None, T0)]
    await store.forget_fetched(source.id, "", ["UIDL-a"])
    assert await store.fetched(source.id, "") == []
