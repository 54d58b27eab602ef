"""Message-row work inside one PostgreSQL write transaction, shared by several concerns.

Owns the steps that append, deliver, replace, copy, move and expunge are made of (and
that `deliver_fetched`, `deliver_and_enqueue` and renaming INBOX reuse): the blob's
metadata and search text, the locks, reserving UIDs and a MODSEQ (`bump`), the quota
and keyword checks, the thread id, and inserting, copying and removing message rows,
each recording its `Change` in `tx.changes` exactly as `store.sqlite.message_rows`
does. Every function runs on the `PgTx` of one `PgCore._write` operation.

How a caller uses it (the API other mixins call; plan §2):

    async def op(tx: PgTx) -> list[AppendResult]:
        results = await insert_messages(tx, deliveries)  # blobs, locks, rows, changes
        ...  # more rows in the same transaction (a queue entry, a fetched record)
        return results
    results = await self._write(op)

  * `insert_messages(tx, items, locks=None)`: store each `NewMessage` (anything with
    mailbox_id, blob, meta, flags, internaldate: `store.api.Delivery` is one) in order,
    all or nothing, and return one `AppendResult` each. It writes the blobs' metadata
    and search text first (`prepare_blobs`), then takes the locks (`lock`), unless the
    caller passes the `Locks` it already holds (then the caller runs `prepare_blobs`
    before taking them). NotFound: a mailbox or a finished blob is missing;
    QuotaExceeded (`rules.quota`, under the account lock); MailboxKeywordsFull.
  * `lock(conn, mailbox_ids)`: lock the mailbox rows in id order, then their accounts
    in id order, in one call per transaction (plan §2 lock order; `core._lock_mailboxes`
    takes the same locks in the same order). Returns `Locks`: each mailbox's account and
    UIDVALIDITY, and each account's quota counters, which the helpers keep current as
    they add and remove rows, so a quota check needs no query.
  * `ordered_write(store, mailbox_ids, op)`: `store._write(op)` such that this node's
    changes of those mailboxes reach its bus in commit order (`PublishOrder`): use it
    instead of `_write` for an operation that adds, changes or removes message rows.
  * `copy_rows`, `move_rows`, `remove_rows`: COPY, MOVE and the removal of rows
    (recorded in ``expunged`` under one new MODSEQ), given the `Locks` of every mailbox
    involved.
  * `bump(conn, mailbox_id, n)`: reserve `n` UIDs and one MODSEQ under the mailbox row
    lock (every change takes exactly one MODSEQ per mailbox, RFC 7162 §3.1). No
    sequences: a UID or MODSEQ becomes visible in commit order only because it is
    taken under the row lock in the committing transaction.
  * `uid_ranges`, `RANGE_ROWS`, `flag_rows`, `keywords_of`: the UID-list idiom
    (merged inclusive ranges as two arrays, one indexed range scan each).

Why blobs first: the metadata UPDATE and the ``blob_text`` INSERT (with its GIN index
entries) are the slow part of a delivery; done before the mailbox lock they cost no one
else any waiting. The mailbox lock is taken last in time, first in order.

Blobs are never deleted here: when a row's removal takes a blob's count to 0, the
trigger stamps ``unreferenced_at`` and the janitor deletes it later (readers may hold
leases, `blobs`).

Must not: commit, start a transaction, take a mailbox lock after an account lock, or
delete a blob.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pillarbox.model import (
    AppendResult,
    CopyResult,
    FlagRow,
    MessageMeta,
    MessagesAdded,
    MessagesExpunged,
    objectids,
)
from pillarbox.rules import quota as quota_rules
from pillarbox.rules.flags import MAX_KEYWORDS_PER_MAILBOX
from pillarbox.store.api import BlobHandle
from pillarbox.store.errors import MailboxKeywordsFull, NotFound, QuotaExceeded
from pillarbox.store.flags import flag_set, split_flags
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.postgres.text import add_texts
from pillarbox.store.sqlite.rows import ranges
from pillarbox.store.times import to_epoch

T = TypeVar("T")


class NewMessage(Protocol):
    """One message to store (`store.api.Delivery` is one; `Target` another)."""

    @property
    def mailbox_id(self) -> int: ...
    @property
    def blob(self) -> BlobHandle: ...
    @property
    def meta(self) -> MessageMeta: ...
    @property
    def flags(self) -> frozenset[str]: ...
    @property
    def internaldate(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A `NewMessage` for APPEND and REPLACE (no INTERNALDATE: now)."""

    mailbox_id: int
    blob: BlobHandle
    meta: MessageMeta
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None


@dataclass(slots=True)
class Usage:
    """An account's limits and counters as the triggers keep them, read under its lock."""

    quota_bytes: int
    used_bytes: int
    quota_messages: int
    used_messages: int


@dataclass(slots=True)
class Locks:
    """What a transaction holds locked: mailbox id → (account id, UIDVALIDITY) of each
    mailbox that exists, and account id → `Usage` of each locked account."""

    mailboxes: dict[int, tuple[int, int]]
    usage: dict[int, Usage]

    def account_of(self, mailbox_id: int) -> int:
        box = self.mailboxes.get(mailbox_id)
        if box is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        return box[0]

    def _counted(self, mailbox_id: int, size: int, count: int) -> None:
        """Mirror the triggers: `count` rows of `size` bytes in all added (or, negative,
        removed) in the mailbox's account."""
        box = self.mailboxes.get(mailbox_id)
        usage = self.usage.get(box[0]) if box is not None else None
        if usage is not None:
            usage.used_bytes += size
            usage.used_messages += count


# --- this node's publication order ---------------------------------------------------
class PublishOrder:
    """Per-mailbox locks of one store (one node), so that its changes reach its own bus
    in commit order (`store.api.ChangeBus`: "after each commit, in commit order").

    Why: `PgCore._write` publishes after the commit returns and the connection goes
    back to the pool; two local writers of one mailbox commit in the order they took
    its row lock, but their tasks may get past the commit in either order (a loaded
    machine reorders a round trip easily), and an IMAP session would then see UID 4
    before UID 3. A writer that holds a `Ticket` for a mailbox from before its
    transaction begins until after its publication (`ordered_write`) keeps the local
    order. It is taken before the transaction, not inside it: a writer waiting for it
    then holds no pool connection and no row lock (a writer that has locked a shared
    blob's row and then waited here would wait for the ticket's holder, which waits for
    that row: a deadlock no server can see). Other nodes' writers are not held: their
    changes come through the relay, read by MODSEQ. Locks of mailboxes nobody waits for
    are dropped."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    def ticket(self) -> Ticket:
        return Ticket(self)

    def _enter(self, mailbox_id: int) -> asyncio.Lock:
        lock = self._locks.get(mailbox_id)
        if lock is None:
            lock = self._locks[mailbox_id] = asyncio.Lock()
        self._users[mailbox_id] = self._users.get(mailbox_id, 0) + 1
        return lock

    def _leave(self, mailbox_id: int) -> None:
        left = self._users[mailbox_id] - 1
        if left:
            self._users[mailbox_id] = left
        else:
            del self._users[mailbox_id]
            del self._locks[mailbox_id]


class Ticket:
    """One operation's hold on `PublishOrder` locks: taken (in id order, once) before its
    transaction begins, released after its changes were published, whether it committed
    or not."""

    def __init__(self, order: PublishOrder) -> None:
        self._order = order
        self._held: list[int] = []

    async def take(self, mailbox_ids: Iterable[int]) -> None:
        if self._held:
            raise RuntimeError("a ticket is taken once")
        wanted = sorted(set(mailbox_ids))
        for mailbox_id in wanted:
            lock = self._order._enter(mailbox_id)
            try:
                await lock.acquire()
            except BaseException:
                self._order._leave(mailbox_id)
                raise
            self._held.append(mailbox_id)

    def release(self) -> None:
        for mailbox_id in reversed(self._held):
            self._order._locks[mailbox_id].release()
            self._order._leave(mailbox_id)
        self._held.clear()


_ORDERS: weakref.WeakKeyDictionary[PgCore, PublishOrder] = weakref.WeakKeyDictionary()


async def ordered_write(
    store: PgCore, mailbox_ids: Iterable[int], op: Callable[[PgTx], Awaitable[T]]
) -> T:
    """`store._write(op)` holding this node's publication locks of `mailbox_ids` (every
    mailbox whose messages `op` may change) from before its transaction until its
    changes are published: they reach this node's bus in commit order (`PublishOrder`)."""
    order = _ORDERS.get(store)
    if order is None:
        order = _ORDERS[store] = PublishOrder()
    ticket = order.ticket()
    try:
        await ticket.take(mailbox_ids)
        return await store._write(op)
    finally:
        ticket.release()


# --- locks and counters --------------------------------------------------------------
async def lock(conn: Conn, mailbox_ids: Iterable[int], *, accounts: bool = True) -> Locks:
    """Lock the mailboxes (in id order), then, with `accounts`, their accounts (in id
    order). Call once per transaction, with every mailbox it will touch; missing
    mailboxes are simply absent from the result."""
    rows = await conn.fetch(
        "SELECT id, account_id, uidvalidity FROM mailboxes WHERE id = ANY($1::bigint[])"
        " ORDER BY id FOR UPDATE",
        sorted(set(mailbox_ids)),
    )
    locks = Locks({r[0]: (r[1], r[2]) for r in rows}, {})
    if accounts:
        await lock_accounts(conn, locks)
    return locks


async def lock_accounts(conn: Conn, locks: Locks) -> None:
    """Lock (in id order) and read the accounts of the locked mailboxes not yet locked.
    NO KEY UPDATE: the lock the triggers' counter updates take anyway, so it serialises
    the writers of an account without holding up rows that merely refer to it (a new
    identity, fetch source or mailbox: their foreign keys take KEY SHARE)."""
    wanted = sorted({a for a, _ in locks.mailboxes.values()} - locks.usage.keys())
    if not wanted:
        return
    rows = await conn.fetch(
        "SELECT id, quota_bytes, used_bytes, quota_messages, used_messages FROM accounts"
        " WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE",
        wanted,
    )
    for r in rows:
        locks.usage[r[0]] = Usage(r[1], r[2], r[3], r[4])


async def bump(conn: Conn, mailbox_id: int, new_uids: int) -> tuple[int, int, int, int]:
    """Reserve `new_uids` UIDs and one new MODSEQ: (first uid, modseq, uidvalidity,
    account id). Every change takes exactly one MODSEQ per mailbox (RFC 7162 §3.1)."""
    row = await conn.fetchrow(
        "UPDATE mailboxes SET uidnext = uidnext + $2, highestmodseq = highestmodseq + 1"
        " WHERE id = $1 RETURNING uidnext - $2, highestmodseq, uidvalidity, account_id",
        mailbox_id,
        new_uids,
    )
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return row[0], row[1], row[2], row[3]


def check_quota(locks: Locks, mailbox_id: int, adding: int, count: int = 1) -> None:
    """Refuse `count` messages of `adding` bytes that would take the mailbox's account
    over either of its limits (`rules.quota`), by the counters read under its lock."""
    account_id = locks.account_of(mailbox_id)
    usage = locks.usage.get(account_id)
    if usage is None:  # pragma: no cover - a caller's bug: accounts not locked
        raise RuntimeError("quota checked without the account lock")
    quota, used = usage.quota_bytes, usage.used_bytes
    limit, held = usage.quota_messages, usage.used_messages
    if not quota_rules.allows(quota, used, adding):
        raise QuotaExceeded(f"{used + adding} bytes exceed the quota of {quota}")
    if not quota_rules.allows_messages(limit, held, count):
        raise QuotaExceeded(f"{held + count} messages exceed the limit of {limit}")


# --- UID lists -----------------------------------------------------------------------
# Rows of a UID list ($2, $3: `uid_ranges`): one indexed range scan per merged range.
RANGE_ROWS = (
    "unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)"
    " JOIN messages AS m ON m.mailbox_id = $1 AND m.uid BETWEEN r.lo AND r.hi"
)
_KEYWORD_RANGE_ROWS = (
    "unnest($2::bigint[], $3::bigint[]) AS r(lo, hi)"
    " JOIN keywords AS k ON k.mailbox_id = $1 AND k.uid BETWEEN r.lo AND r.hi"
)


def uid_ranges(uids: Iterable[int]) -> tuple[list[int], list[int]]:
    """Sorted, merged inclusive ranges of `uids` as (lows, highs) arrays."""
    merged = ranges(uids)
    return [lo for lo, _ in merged], [hi for _, hi in merged]


async def flag_rows(
    conn: Conn, mailbox_id: int, uids: Sequence[int] | None
) -> list[tuple[int, int, int]]:
    """(uid, flag bits, modseq) of existing UIDs, ascending."""
    if uids is None:
        rows = await conn.fetch(
            "SELECT uid, flags, modseq FROM messages WHERE mailbox_id = $1 ORDER BY uid",
            mailbox_id,
        )
    else:
        if not uids:
            return []
        rows = await conn.fetch(
            f"SELECT m.uid, m.flags, m.modseq FROM {RANGE_ROWS} ORDER BY m.uid",
            mailbox_id,
            *uid_ranges(uids),
        )
    return [(r[0], r[1], r[2]) for r in rows]


async def keywords_of(
    conn: Conn, mailbox_id: int, uids: Sequence[int] | None
) -> dict[int, list[str]]:
    if uids is None:
        rows = await conn.fetch(
            "SELECT uid, keyword FROM keywords WHERE mailbox_id = $1", mailbox_id
        )
    else:
        if not uids:
            return {}
        rows = await conn.fetch(
            f"SELECT k.uid, k.keyword FROM {_KEYWORD_RANGE_ROWS}", mailbox_id, *uid_ranges(uids)
        )
    result: dict[int, list[str]] = {}
    for uid, keyword in rows:
        result.setdefault(uid, []).append(keyword)
    return result


# --- blobs ---------------------------------------------------------------------------
_BLOB_META = (
    "UPDATE blobs SET envelope = $2, bodystructure = $3, body = $4, parts = $5,"
    " preview = $6, subject = $7, from_ = $8, to_ = $9, cc = $10, bcc = $11,"
    " message_id = $12, sent_date = $13, sent_day = $14, thread_refs = $15"
    " WHERE id = $1 AND state = 'done' AND unreferenced_at IS NULL AND envelope IS NULL"
)


async def require_blob(conn: Conn, blob_id: int) -> None:
    """NotFound unless `blob_id` is a finished blob that is not gone (a row must never
    point to a missing or unfinished blob; SQLite checks its file the same way)."""
    found = await conn.fetchval(
        "SELECT 1 FROM blobs WHERE id = $1 AND state = 'done' AND unreferenced_at IS NULL",
        blob_id,
    )
    if found is None:
        raise NotFound(f"blob {blob_id} is not a finished blob")


async def prepare_blobs(conn: Conn, items: Iterable[NewMessage]) -> None:
    """The metadata columns (as `sqlite.message_rows.insert_blob` stores them: the first
    metadata a blob gets stays) and the search text of each distinct blob of `items`.
    Before any lock; NotFound if a blob is not a finished one."""
    first: dict[int, MessageMeta] = {}
    for item in items:
        first.setdefault(item.blob.blob_id, item.meta)
    # In id order: two deliveries sharing blobs lock their rows in one order.
    for blob_id, meta in sorted(first.items(), key=lambda kv: kv[0]):
        sent_iso = sent_day = None
        if meta.sent_date is not None:
            sent_iso = meta.sent_date.isoformat()
            sent_day = meta.sent_date.date().isoformat()
        status = await conn.execute(
            _BLOB_META,
            blob_id,
            meta.envelope,
            meta.bodystructure,
            meta.body,
            meta.parts,
            meta.preview,
            meta.subject,
            meta.from_,
            meta.to,
            meta.cc,
            meta.bcc,
            meta.message_id,
            sent_iso,
            sent_day,
            meta.references,
        )
        if status != "UPDATE 1":  # described already (a shared blob), or not there
            await require_blob(conn, blob_id)
    await add_texts(conn, first.items())


# --- keywords and threads ------------------------------------------------------------
async def check_keyword_room(conn: Conn, mailbox_id: int, names: Iterable[str]) -> None:
    """MailboxKeywordsFull if keywords `names` would take the mailbox past
    `rules.flags.MAX_KEYWORDS_PER_MAILBOX` distinct keywords. One indexed look-up for the
    names, and a count only when one of them is new to the mailbox."""
    wanted = {n.lower() for n in names}
    if not wanted:
        return
    known = {
        row[0]
        for row in await conn.fetch(
            "SELECT DISTINCT lower(keyword) FROM keywords WHERE mailbox_id = $1"
            " AND lower(keyword) = ANY($2::text[])",
            mailbox_id,
            sorted(wanted),
        )
    }
    new = wanted - known
    if not new:
        return
    count = await conn.fetchval(
        "SELECT count(DISTINCT lower(keyword)) FROM keywords WHERE mailbox_id = $1", mailbox_id
    )
    if count + len(new) > MAX_KEYWORDS_PER_MAILBOX:
        raise MailboxKeywordsFull(f"At most {MAX_KEYWORDS_PER_MAILBOX} keywords per mailbox")


async def spell_keywords(conn: Conn, mailbox_id: int, keywords: dict[str, str]) -> dict[str, str]:
    """Keywords match case-insensitively; keep the spelling the mailbox already uses."""
    if not keywords:
        return {}
    rows = await conn.fetch(
        "SELECT DISTINCT ON (lower(keyword)) lower(keyword), keyword FROM keywords"
        " WHERE mailbox_id = $1 AND lower(keyword) = ANY($2::text[])",
        mailbox_id,
        [spelling.lower() for spelling in keywords.values()],
    )
    used = {r[0]: r[1] for r in rows}
    return {folded: used.get(spelling.lower(), spelling) for folded, spelling in keywords.items()}


# One new message row, in one statement (the hot mailbox lock is held from `lock` to
# the commit, so every round trip under it counts):
#   k, t, i: its thread (RFC 8474 §5.2, `model.objectids`): that of its first key ($8,
#      in order) the account ($9) knows, else a new one named by its blob ($6); the keys
#      not known yet are recorded under it. After the account lock, so two concurrent
#      deliveries with the same Message-ID agree on one thread.
#   b: one UID and one MODSEQ, taken under the mailbox row lock.
#   kw: its keywords ($10), each in the spelling the mailbox already uses (keywords
#      match case-insensitively, ASCII-folded as SQLite's NOCASE, RFC 9051 §2.3.2).
# Returns (uid, modseq, uidvalidity, keywords as stored); no row: the mailbox is gone.
_INSERT = """
WITH k AS (SELECT key, ord FROM unnest($8::text[]) WITH ORDINALITY AS k(key, ord)),
t AS (SELECT coalesce(
        (SELECT known.thread_id FROM k JOIN thread_ids AS known
            ON known.account_id = $9 AND known.msgid = k.key ORDER BY k.ord LIMIT 1),
        $6::bigint) AS thread_id),
i AS (INSERT INTO thread_ids (account_id, msgid, thread_id)
      SELECT $9, k.key, t.thread_id FROM k CROSS JOIN t ON CONFLICT DO NOTHING),
b AS (UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
      WHERE id = $1 RETURNING uidnext - 1 AS uid, highestmodseq AS modseq, uidvalidity),
kw AS (INSERT INTO keywords (mailbox_id, uid, keyword)
       SELECT $1, b.uid, coalesce(
           (SELECT s.keyword FROM keywords AS s WHERE s.mailbox_id = $1
               AND lower(s.keyword) = lower(w COLLATE "C") LIMIT 1), w)
       FROM unnest($10::text[]) AS w CROSS JOIN b
       ON CONFLICT DO NOTHING RETURNING keyword)
INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz, size,
                      blob_id, savedate, thread_id)
SELECT $1, b.uid, b.modseq, $2::integer, $3::bigint, $4::integer, $5::bigint, $6::bigint,
       $7::bigint, t.thread_id FROM b CROSS JOIN t
RETURNING uid, modseq, (SELECT uidvalidity FROM b), (SELECT array_agg(keyword) FROM kw)
"""


async def insert_one(tx: PgTx, locks: Locks, item: NewMessage) -> AppendResult:
    """One new row (`sqlite.message_rows.append_one`): the blob is prepared and the
    mailbox and its account are locked."""
    conn = tx.conn
    mailbox_id, meta = item.mailbox_id, item.meta
    account_id = locks.account_of(mailbox_id)
    check_quota(locks, mailbox_id, meta.size)
    bits, keywords = split_flags(item.flags)
    await check_keyword_room(conn, mailbox_id, keywords)
    now = datetime.now(UTC)
    epoch, tz = to_epoch(item.internaldate or now)
    row = await conn.fetchrow(
        _INSERT,
        mailbox_id,
        bits,
        epoch,
        tz,
        meta.size,
        item.blob.blob_id,
        int(now.timestamp()),
        list(objectids.thread_keys(meta)),
        account_id,
        list(keywords.values()),
    )
    if row is None:  # pragma: no cover - the mailbox is locked
        raise NotFound(f"no mailbox {mailbox_id}")
    uid, modseq, uidvalidity = row[0], row[1], row[2]
    spelled: list[str] = list(row[3] or ())
    locks._counted(mailbox_id, meta.size, 1)
    tx.changes.append(
        MessagesAdded(account_id, mailbox_id, (FlagRow(uid, flag_set(bits, spelled), modseq),))
    )
    return AppendResult(uid=uid, modseq=modseq, uidvalidity=uidvalidity)


async def insert_messages(
    tx: PgTx, items: Iterable[NewMessage], locks: Locks | None = None
) -> list[AppendResult]:
    """Store `items` in order, all or nothing (see the module docstring)."""
    listed = list(items)
    if locks is None:
        await prepare_blobs(tx.conn, listed)
        locks = await lock(tx.conn, [item.mailbox_id for item in listed])
    else:
        await lock_accounts(tx.conn, locks)
    return [await insert_one(tx, locks, item) for item in listed]


async def copy_rows(
    tx: PgTx,
    locks: Locks,
    src: int,
    uids: Sequence[int] | None,
    dst: int,
    *,
    quota: bool = True,
) -> CopyResult:
    """COPY (`sqlite.message_rows.copy_rows`): the rows of `uids` (all if None) of `src`
    into `dst` under new UIDs in source order, sharing their blobs."""
    conn = tx.conn
    if dst not in locks.mailboxes:
        raise NotFound(f"no mailbox {dst}")
    if uids is None:
        rows = await conn.fetch(
            "SELECT uid, flags, size FROM messages WHERE mailbox_id = $1 ORDER BY uid", src
        )
    else:
        rows = (
            await conn.fetch(
                f"SELECT m.uid, m.flags, m.size FROM {RANGE_ROWS} ORDER BY m.uid",
                src,
                *uid_ranges(uids),
            )
            if uids
            else []
        )
    if not rows:
        if src not in locks.mailboxes:
            raise NotFound(f"no mailbox {src}")
        return CopyResult(uidvalidity=locks.mailboxes[dst][1], source_uids=(), dest_uids=())
    total = sum(r[2] for r in rows)
    if quota:
        check_quota(locks, dst, total, len(rows))
    source_uids = [r[0] for r in rows]
    first, modseq, uidvalidity, account_id = await bump(conn, dst, len(rows))
    dest_uids = list(range(first, first + len(rows)))
    await conn.execute(
        # RFC 8514 §3: the copy is saved now (MOVE too: it copies, then removes).
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz,"
        # RFC 8474 §5.1, §5.2: the copy keeps its EMAILID (the blob) and its THREADID.
        " size, blob_id, savedate, thread_id) SELECT $1, r.new, $2, m.flags,"
        " m.internaldate, m.internal_tz, m.size, m.blob_id, $3, m.thread_id"
        " FROM unnest($4::bigint[], $5::bigint[]) AS r(old, new)"
        " JOIN messages AS m ON m.mailbox_id = $6 AND m.uid = r.old",
        dst,
        modseq,
        int(datetime.now(UTC).timestamp()),
        source_uids,
        dest_uids,
        src,
    )
    locks._counted(dst, total, len(rows))
    keywords = await keywords_of(conn, src, source_uids)
    if keywords:
        await check_keyword_room(conn, dst, {k for ks in keywords.values() for k in ks})
        await conn.execute(
            "INSERT INTO keywords (mailbox_id, uid, keyword)"
            " SELECT $1, r.new, k.keyword FROM unnest($2::bigint[], $3::bigint[]) AS r(old, new)"
            " JOIN keywords AS k ON k.mailbox_id = $4 AND k.uid = r.old ON CONFLICT DO NOTHING",
            dst,
            source_uids,
            dest_uids,
            src,
        )
    added = tuple(
        FlagRow(new, flag_set(r[1], keywords.get(r[0], ())), modseq)
        for r, new in zip(rows, dest_uids, strict=True)
    )
    tx.changes.append(MessagesAdded(account_id, dst, added))
    return CopyResult(
        uidvalidity=uidvalidity, source_uids=tuple(source_uids), dest_uids=tuple(dest_uids)
    )


# Remove rows $2 of mailbox $1 and record them as expunged, under one new MODSEQ, in one
# statement: (modseq, account id, rows removed, their bytes); no row: no such mailbox.
_REMOVE = """
WITH b AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1
           WHERE id = $1 RETURNING highestmodseq, account_id),
d AS (DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2::bigint[])
      RETURNING size),
x AS (INSERT INTO expunged (mailbox_id, uid, modseq)
      SELECT $1, u, b.highestmodseq FROM unnest($2::bigint[]) AS u CROSS JOIN b
      ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = excluded.modseq)
SELECT b.highestmodseq, b.account_id, (SELECT count(*) FROM d),
       (SELECT coalesce(sum(size), 0) FROM d) FROM b
"""


async def remove_rows(tx: PgTx, locks: Locks | None, mailbox_id: int, uids: Sequence[int]) -> None:
    """Delete rows, record them for QRESYNC under one new MODSEQ, publish. Their blobs
    are left to the janitor. `locks`: the caller's, kept current (or None)."""
    if not uids:
        return
    row = await tx.conn.fetchrow(_REMOVE, mailbox_id, sorted(set(uids)))
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    modseq, account_id, count, size = row[0], row[1], row[2], row[3]
    if locks is not None:
        locks._counted(mailbox_id, -int(size), -int(count))
    tx.changes.append(MessagesExpunged(account_id, mailbox_id, tuple(sorted(uids)), modseq))


async def move_rows(
    tx: PgTx, locks: Locks, src: int, uids: Sequence[int] | None, dst: int
) -> CopyResult:
    """MOVE (RFC 6851): copy, then remove, in the caller's one transaction."""
    # A move inside one account changes neither its bytes nor its message count (the
    # copy's rows are counted and the source's uncounted in this one transaction): no
    # quota check.
    a, b = locks.mailboxes.get(src), locks.mailboxes.get(dst)
    same_account = a is not None and b is not None and a[0] == b[0]
    result = await copy_rows(tx, locks, src, uids, dst, quota=not same_account)
    await remove_rows(tx, locks, src, result.source_uids)
    return result
