"""`pillarbox migrate-store`: a SQLite store copied into an empty PostgreSQL database.

The SQLite store is filled through the contract (as the server fills it), the command
copies it, and the PostgreSQL rows are compared with SQLite's table by table, plus the
things an IMAP client has cached (UIDVALIDITY, UIDs, MODSEQs, uidnext, HIGHESTMODSEQ,
expunged MODSEQs for QRESYNC) and every blob's bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pillarbox.model import (
    FlagMode,
    PopOnRetrieve,
    PopScope,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchText,
    SearchThreadId,
)
from pillarbox.model.fetch import FetchedRecord, FetchFolderState
from pillarbox.model.identities import NewIdentity
from pillarbox.model.queue import DkimKey, QueuedRecipient
from pillarbox.store import transfer
from pillarbox.store.api import Store
from pillarbox.store.postgres import PgStore
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.blobs import BlobFiles
from tests import pg
from tests.store.conftest import dummy_meta, write_blob
from tests.store.test_fetch_sources import new_source
from tests.test_cli import run

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def populate(data: Path) -> None:
    """A store with a bit of everything: two accounts, folders (one deleted, one
    renamed), messages of several sizes (below, at and above a chunk), flags, keywords,
    expunges, copies, moves, \\Recent claimed, a queue entry under a claim, a DKIM key,
    an identity, an image sender, a fetch source with a folder state."""
    rng = random.Random(17)
    store = SqliteStore(data)
    await store.open()
    try:
        await store.add_domain("example.org")
        await store.add_domain("example.net")
        alice = await store.add_account("alice@example.org", "$argon2id$alice")
        bob = await store.add_account("bob@example.net", "$argon2id$bob")
        await store.add_alias("info@example.org", ["alice@example.org", "bob@example.net"])
        await store.set_quota("alice@example.org", 10**9, 10_000)
        await store.set_pop_policy("bob@example.net", PopOnRetrieve.KEEP, PopScope.FROM_NOW)
        old = await store.create_mailbox(alice.id, "Old")
        await store.delete_mailbox(alice.id, old.name)  # its id is never given again
        lists = await store.create_mailbox(alice.id, "Lists/python")
        await store.rename_mailbox(alice.id, "Lists/python", "Lists/py")
        await store.set_subscribed(alice.id, "Lists/py", True)
        inbox = await store.get_mailbox(alice.id, "INBOX")
        bob_inbox = await store.get_mailbox(bob.id, "INBOX")
        assert inbox is not None and bob_inbox is not None
        sizes = [40, 900, transfer.CHUNK - 1, transfer.CHUNK, transfer.CHUNK + 1, 700_000]
        for i in range(24):
            size = sizes[i % len(sizes)]
            head = f"Subject: message {i}\r\nMessage-ID: <m{i}@example.org>\r\n\r\n".encode()
            data_bytes = head + rng.randbytes(max(0, size - len(head)))
            blob = await write_blob(store, data_bytes)
            flags = frozenset({"$Label1"} if i % 3 == 0 else {"\\Flagged", "Work"})
            await store.append(
                inbox.id,
                blob,
                dummy_meta(
                    data_bytes,
                    subject=f"message {i} Straße",
                    headers=f"Subject: message {i} Straße\r\nX-Tag: İstanbul {i}\r\n",
                    text=f"body {i} HELLO Größe",
                    message_id=f"<m{i}@example.org>",
                ),
                flags,
                T0,
            )
        uids = await store.uids(inbox.id)
        await store.set_flags(inbox.id, uids[:10], frozenset({"\\Seen"}), FlagMode.ADD)
        await store.set_flags(inbox.id, uids[2:5], frozenset({"\\Deleted"}), FlagMode.ADD)
        await store.expunge(inbox.id)
        await store.copy(inbox.id, uids[5:9], lists.id)
        await store.move(inbox.id, uids[9:12], lists.id)
        await store.claim_recent(inbox.id, uids[15])
        await store.set_flags(inbox.id, uids[20:], frozenset({"Work"}), FlagMode.REMOVE)
        bob_blob = await write_blob(store, b"Subject: to bob\r\n\r\nhi\r\n")
        await store.append(bob_inbox.id, bob_blob, dummy_meta(b"x" * 23, subject="to bob"))
        await store.pop_hide(bob_inbox.id, await store.uids(bob_inbox.id))
        queued = await write_blob(store, b"Subject: out\r\n\r\nbye\r\n")
        await store.enqueue(
            "alice@example.org",
            [QueuedRecipient("carol@example.com", notify="SUCCESS"), QueuedRecipient("d@x.test")],
            queued,
            dsn_envid="env1",
        )
        await store.claim_queue(datetime.now(UTC), 10, 600.0)
        await store.put_dkim_key(
            DkimKey("example.org", "pb202603e", "ed25519-sha256", b"\x00PEM\xff", "AAA=", T0)
        )
        await store.add_identity(NewIdentity(alice.id, "info@example.org", "Info", "-- me"))
        await store.add_image_sender(alice.id, "news@example.com")
        source = await store.add_fetch_source(new_source(alice.id))
        await store.mark_fetched(
            [
                FetchedRecord(source.id, "INBOX", "40", "d1", T0, 77, 40, frozenset({"\\Seen"})),
                FetchedRecord(source.id, "", "UIDL-a", "d2", T0),
            ]
        )
        await store.set_fetch_folder(source.id, FetchFolderState("INBOX", 77, 1234, 99))
    finally:
        await store.close()


def _norm(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def _key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in row)


async def compare(data: Path, dsn: str) -> None:
    source = sqlite3.connect(data / "pillarbox.db")
    conn = await asyncpg.connect(dsn)
    try:
        for table in transfer.TABLES:
            have = {r[1] for r in source.execute(f"PRAGMA table_info({table})")}
            target = {
                str(r["column_name"]): str(r["data_type"])
                for r in await conn.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                    table,
                )
            }
            columns = [c for c in target if c in have and (table, c) not in transfer.OVERRIDES]
            names = ", ".join(columns)
            # pg_0001 declares the queue's times bigint, where SQLite keeps a fraction
            # in its INTEGER column: whole seconds (rounded) are what PostgreSQL holds.
            whole = [target[c] == "bigint" for c in columns]
            want = sorted(
                (
                    tuple(
                        round(v) if w and isinstance(v, float) else _norm(v)
                        for v, w in zip(r, whole, strict=True)
                    )
                    for r in source.execute(f"SELECT {names} FROM {table}")
                ),
                key=_key,
            )
            got = sorted(
                (
                    tuple(_norm(v) for v in r)
                    for r in await conn.fetch(f"SELECT {names} FROM {table}")
                ),
                key=_key,
            )
            assert got == want, table
            assert want or table in ("subscriptions",), f"the test left {table} empty"
        # What IMAP clients cached, per mailbox (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
        sql = (
            "SELECT m.id, m.uidvalidity, m.uidnext, m.highestmodseq, m.recent_uid,"
            " (SELECT count(*) FROM messages WHERE mailbox_id = m.id),"
            " (SELECT count(*) FROM expunged WHERE mailbox_id = m.id)"
            " FROM mailboxes m ORDER BY m.id"
        )
        want_boxes = source.execute(sql).fetchall()
        assert [tuple(r) for r in await conn.fetch(sql)] == want_boxes
        assert any(r[6] for r in want_boxes)  # expunged rows exist and came along
        # The queue claim of the stopped server is released; nothing else changed.
        assert await conn.fetchval("SELECT count(*) FROM queue WHERE claimed_until IS NULL") == 1
        # Every blob's bytes, chunk by chunk, equal its file; chunks are CHUNK long.
        files = BlobFiles(data / "blobs", None)  # type: ignore[arg-type]
        for (blob_id,) in source.execute("SELECT id FROM blobs"):
            chunks = await conn.fetch(
                "SELECT seq, data FROM blob_chunks WHERE blob_id = $1 ORDER BY seq", blob_id
            )
            assert [r["seq"] for r in chunks] == list(range(len(chunks)))
            assert all(len(r["data"]) == transfer.CHUNK for r in chunks[:-1])
            stored = b"".join(bytes(r["data"]) for r in chunks)
            assert stored == files.path(blob_id).read_bytes(), blob_id
        assert await conn.fetchval("SELECT count(*) FROM blobs WHERE state <> 'done'") == 0
        assert await conn.fetchval("SELECT max(seq) FROM blob_chunks") >= 2  # 700 kB: 3 chunks
        # The search text, casefolded as delivery folds it (ß -> ss, İ -> i̇).
        texts = await conn.fetch("SELECT headers, headers_cf, body_cf FROM blob_text")
        assert texts and all(r["headers_cf"] == r["headers"].casefold() for r in texts)
        assert any("strasse" in r["headers_cf"] and "i̇stanbul" in r["headers_cf"] for r in texts)
        assert any("hello grösse" in r["body_cf"] for r in texts)
        # The counter triggers are on again, and ids continue after the copied ones.
        enabled = await conn.fetch(
            "SELECT tgname, tgenabled::text AS tgenabled FROM pg_trigger"
            " WHERE NOT tgisinternal ORDER BY tgname"
        )
        assert {r["tgenabled"] for r in enabled} == {"O"} and len(enabled) == 4
        high = source.execute("SELECT value FROM settings WHERE key = 'mailbox_id_high'")
        (mailbox_id_high,) = high.fetchone()
        nxt = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('mailboxes', 'id'))")
        assert nxt == mailbox_id_high + 1
        biggest = source.execute("SELECT max(id) FROM blobs").fetchone()[0]
        assert (
            await conn.fetchval("SELECT nextval(pg_get_serial_sequence('blobs', 'id'))")
            == biggest + 1
        )
    finally:
        source.close()
        await conn.close()


async def _answers(store: Store) -> list[object]:
    """What clients would be told by `store` about every account's mail: the same
    answers from both backends mean the copy is invisible to them."""
    out: list[object] = [await store.list_domains(), await store.list_aliases()]
    for account in await store.list_accounts():
        out += [account, await store.quota(account.id), await store.list_subscriptions(account.id)]
        out += [await store.list_dkim_keys(), await store.list_identities(account.id)]
        out.append(await store.list_image_senders(account.id))
        for mailbox in await store.list_mailboxes(account.id):
            box = mailbox.id
            uids, status, _ = await store.select_snapshot(box)
            out += [mailbox, uids, status, await store.changes_since(box, 0)]
            out += [await store.changes_since(box, status.highestmodseq // 2)]
            out += [await store.fetch_flags(box, uids), await store.fetch(box, uids)]
            out += [await store.pop_hidden(box), await store.count_recent(box)]
            keys: list[SearchKey] = [
                # Not ß against ss: the backends differ there today (SQLite's trigram
                # prefilter sees "Größe", not its casefolded "grösse").
                SearchText("Straße"),
                SearchText("hello GRÖẞE", body_only=True),
                SearchText("ell"),
                SearchHeader("x-tag", "İSTANBUL 1"),
                SearchHeader("subject", "message 2"),
                SearchFlag("\\Seen"),
                SearchFlag("Work"),
            ]
            out += [await store.search(box, key) for key in keys]
            rows = await store.fetch(box, uids[:1])
            if rows and rows[0].thread_id is not None:
                out.append(await store.search(box, SearchThreadId(rows[0].thread_id)))
            out += [await store.read_message(box, uid) for uid in uids]
    return out


async def compare_through_the_stores(data: Path, dsn: str) -> None:
    sqlite_store = SqliteStore(data, collect_orphans=False)
    pg_store = PgStore(dsn, node_id="check", pool_min=1, pool_max=2, server=False)
    await sqlite_store.open()
    await pg_store.open()
    try:
        want, got = await _answers(sqlite_store), await _answers(pg_store)
        assert len(got) == len(want)
        for index, (w, g) in enumerate(zip(want, got, strict=True)):
            assert g == w, index
    finally:
        await pg_store.close()
        await sqlite_store.close()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pillarbox.toml"
    path.write_text('[server]\ndata_dir = "var"\nhostname = "mail.example.test"\n')
    return path


def test_migrate_store_copies_everything(tmp_path: Path, config: Path) -> None:
    data = tmp_path / "sqlite-data"
    asyncio.run(populate(data))
    dsn = pg.database(str(tmp_path))  # freshly migrated, empty
    result = run(config, "migrate-store", "--from", f"sqlite:{data}", "--to", f"postgres:{dsn}")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.startswith("copied ") and "verified: " in result.stdout
    asyncio.run(compare(data, dsn))
    asyncio.run(compare_through_the_stores(data, dsn))


def test_migrate_store_migrates_an_empty_database_and_refuses_a_full_one(
    tmp_path: Path, config: Path
) -> None:
    data = tmp_path / "sqlite-data"
    asyncio.run(populate(data))
    dsn = pg.empty_database(str(tmp_path))  # no schema at all: the transfer migrates it
    args = ("migrate-store", "--from", f"sqlite:{data}", "--to", dsn)
    first = run(config, *args)
    assert first.returncode == 0, first.stderr
    before = os.stat(data / "pillarbox.db").st_mtime_ns
    second = run(config, *args)
    assert second.returncode == 1 and second.stdout == ""
    assert "the target database is not empty (table settings has rows)" in second.stderr
    assert len(second.stderr.splitlines()) == 1
    assert os.stat(data / "pillarbox.db").st_mtime_ns == before  # read-only source
    asyncio.run(compare(data, dsn))  # the refused run changed nothing


def test_migrate_store_refuses_bad_locations(tmp_path: Path, config: Path) -> None:
    result = run(config, "migrate-store", "--from", "/x", "--to", "postgres:postgresql://h/d")
    assert result.returncode == 1 and "expected sqlite:PATH" in result.stderr
    result = run(config, "migrate-store", "--from", f"sqlite:{tmp_path}", "--to", "mysql://h/d")
    assert result.returncode == 1 and "expected postgres:DSN" in result.stderr
    dsn = "postgresql://postgres@127.0.0.1:1/none"
    result = run(config, "migrate-store", "--from", f"sqlite:{tmp_path}/none", "--to", dsn)
    assert result.returncode == 1 and "no SQLite store at" in result.stderr


def test_verification_catches_a_changed_blob(tmp_path: Path) -> None:
    """The sha256 sample compares the files with what was loaded: a file changed between
    the copy and the check (here: after the copy, through a Progress hook) fails the
    transfer, and the rollback leaves the target empty."""
    data = tmp_path / "sqlite-data"
    asyncio.run(populate(data))
    dsn = pg.database(str(tmp_path))
    files = BlobFiles(data / "blobs", None)  # type: ignore[arg-type]
    source = sqlite3.connect(data / "pillarbox.db")
    ids = [int(r[0]) for r in source.execute("SELECT id FROM blobs")]
    source.close()

    class Tamper:
        def begin(self, total_bytes: int) -> None:
            pass

        def advance(self, nbytes: int) -> None:
            pass

        def end(self) -> None:  # every chunk is loaded: now change every file
            for blob_id in ids:
                path = files.path(blob_id)
                path.write_bytes(hashlib.sha256(path.read_bytes()).digest())

    with pytest.raises(transfer.TransferError, match="verification: blob"):
        asyncio.run(transfer.transfer(data, dsn, Tamper()))

    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM messages"))
        finally:
            await conn.close()

    assert asyncio.run(count()) == 0


def test_a_missing_message_file_fails_the_transfer_and_leaves_the_target_empty(
    tmp_path: Path, config: Path
) -> None:
    data = tmp_path / "sqlite-data"
    asyncio.run(populate(data))
    source = sqlite3.connect(data / "pillarbox.db")
    (blob_id,) = source.execute("SELECT max(id) FROM blobs").fetchone()
    source.close()
    BlobFiles(data / "blobs", None).path(blob_id).unlink()  # type: ignore[arg-type]
    dsn = pg.database(str(tmp_path))
    result = run(config, "migrate-store", "--from", f"sqlite:{data}", "--to", f"postgres:{dsn}")
    assert result.returncode == 1
    assert f"the file of blob {blob_id} is missing" in result.stderr

    async def counts() -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            return [
                int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                for table in (*transfer.TABLES, *transfer.DERIVED)
            ]
        finally:
            await conn.close()

    assert set(asyncio.run(counts())) == {0}


def test_an_older_sqlite_schema_is_refused(tmp_path: Path, config: Path) -> None:
    """The copy maps the newest SQLite schema's columns: an older store is migrated first
    (by `pillarbox migrate` on its own configuration), never here (read-only)."""
    data = tmp_path / "sqlite-data"
    asyncio.run(populate(data))
    db = sqlite3.connect(data / "pillarbox.db")
    with db:
        db.execute(
            "DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)"
        )
    db.close()
    dsn = pg.database(str(tmp_path))
    result = run(config, "migrate-store", "--from", f"sqlite:{data}", "--to", f"postgres:{dsn}")
    assert result.returncode == 1
    assert "run `pillarbox migrate` with this release on the SQLite configuration" in result.stderr
