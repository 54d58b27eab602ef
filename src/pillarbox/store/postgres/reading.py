"""Reading messages in the PostgreSQL backend: UIDs, flags, FETCH rows, bodies, SEARCH,
CONDSTORE/QRESYNC changes, SELECT, POP3's hidden set.

Owns the read-only queries over ``messages``, ``keywords``, ``blobs``, ``blob_chunks``
and ``expunged``, and the row idioms the listing and sorting concerns share with it.
Everything derived from the message bytes (envelope, body structure, part offsets,
preview, size) was stored at delivery, so FETCH copies bytes and only BODY[...] reads
chunks. What each operation costs is round trips: a set of UIDs is one range or its
merged ranges as two arrays (`uid_set`: one index range scan per range), each read
is one statement where it can be (one snapshot, no BEGIN/COMMIT), a message list comes
back as a few arrays (decoded in C) rather than a record per message, and bodies come
with their rows' chunks, cut to the asked range, in one query per batch.

Must not: change anything, parse messages, or query once per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pillarbox.model import FlagRow, FlagText, MailboxStatus, MessageInfo, SearchKey
from pillarbox.store.errors import NotFound
from pillarbox.store.flags import DELETED, SEEN, flag_set, system_names_sql
from pillarbox.store.postgres import search as search_sql
from pillarbox.store.postgres.blobs import CHUNK
from pillarbox.store.postgres.core import Conn, PgCore
from pillarbox.store.times import from_epoch

# Chunk `seq` of a blob (`blob_chunks`, written by `blobs`) holds its bytes from
# seq * CHUNK on; every chunk but the last is full.
_TO_END = 2**62  # a chunk number past any blob's last

# The counters of STATUS/SELECT over a mailbox's message rows, in the order
# `counted_status` takes them; a caller may add columns after them (one scan).
COUNTER_COLUMNS = (
    f"count(*), count(*) FILTER (WHERE flags & {SEEN} = 0),"
    f" count(*) FILTER (WHERE flags & {DELETED} <> 0), coalesce(sum(size), 0)::bigint,"
    f" coalesce(sum(size) FILTER (WHERE flags & {DELETED} <> 0), 0)::bigint"
)


def ranges(uids: Iterable[int]) -> tuple[list[int], list[int]]:
    """Sorted, merged inclusive UID ranges as (lows, highs): the UID-set parameter."""
    if isinstance(uids, range) and uids.step == 1:
        return ([uids.start], [uids.stop - 1]) if uids else ([], [])  # one range, no walk
    los: list[int] = []
    his: list[int] = []
    for uid in sorted(set(uids)):
        if his and uid == his[-1] + 1:
            his[-1] = uid
        else:
            los.append(uid)
            his.append(uid)
    return los, his


@dataclass(frozen=True, slots=True)
class UidSet:
    """The rows of a set of UIDs in one mailbox ($1) as SQL: FROM items binding `alias`
    and a condition, over the parameters $2 and $3 (`params`).

    One range (1:*, the common case) is a plain range condition, which the planner
    answers with an index scan in UID order; several are joined from their bounds as
    two arrays, one index range scan per range."""

    source: str
    where: str
    params: tuple[object, object]


def uid_set(uids: Iterable[int], table: str = "messages", alias: str = "m") -> UidSet | None:
    """The `UidSet` of `uids` in `table`; None when there are none."""
    los, his = ranges(uids)
    if not los:
        return None
    if len(los) == 1:
        return UidSet(
            f"{table} AS {alias}",
            f"{alias}.mailbox_id = $1 AND {alias}.uid BETWEEN $2::bigint AND $3::bigint",
            (los[0], his[0]),
        )
    return UidSet(
        f"unnest($2::bigint[], $3::bigint[]) AS r(lo, hi) JOIN {table} AS {alias}"
        f" ON {alias}.mailbox_id = $1 AND {alias}.uid BETWEEN r.lo AND r.hi",
        "TRUE",
        (los, his),
    )


async def flags_and_keywords(
    conn: Conn, mailbox_id: int, uids: Sequence[int]
) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
    """(uid, flag bits, modseq) of the existing `uids`, ascending, and their keywords,
    in one statement (one round trip, one snapshot: a keyword never shows without its
    row).

    Five arrays: a record per message would cost more than the query. The rows are
    sorted here, not by the server, whose sort of 100,000 rows (a sort node, or one
    per ordered aggregate) cost more than the scan; a list already in order (rows are
    stored in UID order) sorts in one pass."""
    wanted = uid_set(uids)
    if wanted is None:
        return [], {}
    keyword_set = uid_set(uids, "keywords", "k")
    assert keyword_set is not None
    row = await conn.fetchrow(
        "SELECT f.*, kw.* FROM (SELECT array_agg(m.uid), array_agg(m.flags),"
        f" array_agg(m.modseq) FROM {wanted.source} WHERE {wanted.where}) AS f,"
        " (SELECT array_agg(k.uid), array_agg(k.keyword)"
        f" FROM {keyword_set.source} WHERE {keyword_set.where}) AS kw",
        mailbox_id,
        *wanted.params,
    )
    assert row is not None  # aggregates always have their row
    if row[0] is None:
        return [], {}
    rows = list(zip(row[0], row[1], row[2], strict=True))
    rows.sort()
    keywords: dict[int, list[str]] = {}
    if row[3] is not None:
        for uid, keyword in zip(row[3], row[4], strict=True):
            keywords.setdefault(uid, []).append(keyword)
    return rows, keywords


_SYSTEM_NAMES = system_names_sql("m.flags")


async def flag_text(
    conn: Conn,
    mailbox_id: int,
    uids: Sequence[int],
    modseq: bool,
    changed_since: int | None,
) -> FlagText:
    """`fetch_flag_text` in one statement: the distinct keywords of the rows (an
    InitPlan, run once), then every line built by the server and joined by one
    `string_agg`, so asyncpg decodes one text instead of a record per message. A row
    looks its keywords up only when the first part found any (CASE does not evaluate
    the other arm). The rows are aggregated from a subquery in UID order (for one range
    an index scan, no sort node)."""
    if isinstance(uids, range) and uids.step == 1:
        if not uids:
            return FlagText(0, "")
        wanted: UidSet | None = UidSet(
            "messages AS m",
            "m.mailbox_id = $1 AND m.uid BETWEEN $2::bigint AND $3::bigint",
            (uids.start, uids.stop - 1),
        )
        keyword_set: UidSet | None = UidSet(
            "keywords AS k",
            "k.mailbox_id = $1 AND k.uid BETWEEN $2::bigint AND $3::bigint",
            (uids.start, uids.stop - 1),
        )
    else:
        wanted = uid_set(uids)
        keyword_set = uid_set(uids, "keywords", "k")
    if wanted is None or keyword_set is None:
        return FlagText(0, "")
    changed = kw_changed = ""
    params: tuple[object, ...] = (mailbox_id, *wanted.params)
    if changed_since is not None:
        changed = " AND m.modseq > $4::bigint"
        kw_changed = (
            " AND EXISTS (SELECT 1 FROM messages AS x WHERE x.mailbox_id = k.mailbox_id"
            " AND x.uid = k.uid AND x.modseq > $4::bigint)"
        )
        params = (*params, changed_since)
    line = "m.uid::text || E'\\t' || "
    if modseq:
        line += "m.modseq::text || E'\\t' || "
    row = await conn.fetchrow(
        "WITH kw AS (SELECT array_agg(DISTINCT k.keyword) AS names"
        f" FROM {keyword_set.source} WHERE {keyword_set.where}{kw_changed}),"
        f" lines AS (SELECT {line}CASE WHEN (SELECT names FROM kw) IS NULL"
        f" THEN {_SYSTEM_NAMES} ELSE ltrim({_SYSTEM_NAMES} || coalesce(' ' ||"
        " (SELECT string_agg(k.keyword, ' ' ORDER BY lower(k.keyword)) FROM keywords AS k"
        " WHERE k.mailbox_id = m.mailbox_id AND k.uid = m.uid), '')) END AS line"
        f" FROM {wanted.source} WHERE {wanted.where}{changed} ORDER BY m.uid)"
        " SELECT (SELECT names FROM kw), count(*), coalesce(string_agg(line, E'\\n'), '')"
        " FROM lines",
        *params,
    )
    assert row is not None  # aggregates always have their row
    return FlagText(row[1], row[2], frozenset(row[0] or ()))


async def all_uids(conn: Conn, mailbox_id: int) -> list[int]:
    """The mailbox's UIDs, ascending: one array, sorted here (see `flags_and_keywords`)."""
    found = await conn.fetchval(
        "SELECT array_agg(uid) FROM messages WHERE mailbox_id = $1", mailbox_id
    )
    uids: list[int] = list(found) if found is not None else []
    uids.sort()
    return uids


def counted_status(box: tuple[int, int, int], counts: Sequence[int]) -> MailboxStatus:
    """The MailboxStatus of a mailbox's (uidnext, uidvalidity, highestmodseq) and its
    `COUNTER_COLUMNS` values."""
    messages, unseen, deleted, size, deleted_size = counts[:5]
    return MailboxStatus(
        messages=messages,
        unseen=unseen,
        deleted=deleted,
        size=size,
        uidnext=box[0],
        uidvalidity=box[1],
        highestmodseq=box[2],
        deleted_size=deleted_size,
    )


async def mailbox_counters(conn: Conn, mailbox_id: int) -> tuple[MailboxStatus, int | None]:
    """The counters of STATUS/SELECT and the first unseen UID, with the mailbox's row,
    in one statement (one snapshot, one pass over the rows); NotFound if there is no
    such mailbox."""
    row = await conn.fetchrow(
        "SELECT b.uidnext, b.uidvalidity, b.highestmodseq, c.* FROM mailboxes AS b"
        f" CROSS JOIN LATERAL (SELECT {COUNTER_COLUMNS},"
        f" min(uid) FILTER (WHERE flags & {SEEN} = 0)"
        " FROM messages WHERE mailbox_id = b.id) AS c WHERE b.id = $1",
        mailbox_id,
    )
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    first_unseen: int | None = row[8]
    return counted_status((row[0], row[1], row[2]), tuple(row[3:8])), first_unseen


def chunk_span(start: int, length: int | None) -> tuple[int, int]:
    """The first and last chunk numbers holding bytes `start`..`start+length`."""
    first = start // CHUNK
    if length is None:
        return first, _TO_END
    if length <= 0:
        return first, first - 1  # none
    return first, (start + length - 1) // CHUNK


# Each chunk of a wanted range, cut to the range on the server (a partial FETCH of a
# large message carries its bytes, not whole 256 KiB chunks), in request order.
_RANGES_SQL = f"""
SELECT w.ord, substring(c.data
        FROM (greatest(w.s - c.seq::bigint * {CHUNK}, 0) + 1)::int
        FOR (least(w.e - c.seq::bigint * {CHUNK}, {CHUNK})
             - greatest(w.s - c.seq::bigint * {CHUNK}, 0))::int)
  FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
       WITH ORDINALITY AS w(uid, s, e, lo, hi, ord)
  JOIN messages AS m ON m.mailbox_id = $1 AND m.uid = w.uid
  LEFT JOIN blob_chunks AS c ON c.blob_id = m.blob_id AND c.seq BETWEEN w.lo AND w.hi
 ORDER BY w.ord, c.seq"""


async def _bodies(
    conn: Conn, mailbox_id: int, wanted: Sequence[tuple[int, int, int | None]]
) -> list[bytes | None]:
    """Byte ranges (uid, start, length) of messages, in one query: the rows and the
    pieces of their chunks; None for a UID that has no row."""
    if not wanted:
        return []
    uids: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    firsts: list[int] = []
    lasts: list[int] = []
    for uid, start, length in wanted:
        start = max(0, start)
        first, last = chunk_span(start, length)
        uids.append(uid)
        starts.append(start)
        ends.append(_TO_END if length is None else start + max(0, length))
        firsts.append(first)
        lasts.append(last)
    rows = await conn.fetch(_RANGES_SQL, mailbox_id, uids, starts, ends, firsts, lasts)
    pieces: dict[int, list[bytes]] = {}
    for ord_, data in rows:
        got = pieces.setdefault(ord_ - 1, [])
        if data is not None:
            got.append(data)
    out: list[bytes | None] = []
    for i in range(len(wanted)):
        got_pieces = pieces.get(i)
        out.append(None if got_pieces is None else b"".join(got_pieces))
    return out


async def message_infos(conn: Conn, mailbox_id: int, wanted: Sequence[int]) -> list[MessageInfo]:
    """The precomputed rows of `wanted` (ascending), keywords included: one statement
    (a FETCH is one round trip; each row's keywords are an index probe in it)."""
    uids = uid_set(wanted)
    if uids is None:
        return []
    rows = await conn.fetch(
        "SELECT m.uid, m.modseq, m.flags, m.internaldate, m.internal_tz, m.size,"
        " b.envelope, b.bodystructure, b.body, b.parts, b.preview, m.blob_id, m.savedate,"
        " m.thread_id, ARRAY(SELECT kw.keyword FROM keywords AS kw"
        " WHERE kw.mailbox_id = m.mailbox_id AND kw.uid = m.uid)"
        f" FROM {uids.source} JOIN blobs AS b ON b.id = m.blob_id"
        f" WHERE {uids.where} ORDER BY m.uid",
        mailbox_id,
        *uids.params,
    )
    infos: list[MessageInfo] = []
    for r in rows:
        internaldate = from_epoch(r[3], r[4])
        infos.append(
            MessageInfo(
                mailbox_id=mailbox_id,
                uid=r[0],
                modseq=r[1],
                flags=flag_set(r[2], r[14]),
                internaldate=internaldate,
                size=r[5],
                envelope=r[6] or b"",
                bodystructure=r[7] or b"",
                body=r[8] or b"",
                parts=r[9] or "",
                preview=r[10] or "",
                blob_id=r[11],
                # RFC 8514: a row saved before save dates were kept answers its
                # INTERNALDATE
                savedate=internaldate if r[12] is None else from_epoch(r[12], 0),
                thread_id=r[13],
            )
        )
    return infos


class ReadingMixin(PgCore):
    """The message-reading operations of `PgStore`."""

    async def uids(self, mailbox_id: int) -> list[int]:
        return await self._read(lambda conn: all_uids(conn, mailbox_id))

    async def fetch_flags(self, mailbox_id: int, uids: Sequence[int]) -> list[FlagRow]:
        rows, keywords = await self.fetch_flag_bits(mailbox_id, uids)
        return [FlagRow(uid, flag_set(bits, keywords.get(uid, ())), ms) for uid, bits, ms in rows]

    async def fetch_flag_bits(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        # The raw rows of `fetch_flags`: no FlagRow or frozenset per message.
        wanted = list(uids)

        return await self._read(lambda conn: flags_and_keywords(conn, mailbox_id, wanted))

    async def fetch_flag_text(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        modseq: bool = False,
        changed_since: int | None = None,
    ) -> FlagText:
        wanted = uids if isinstance(uids, range) else list(uids)
        return await self._read(
            lambda conn: flag_text(conn, mailbox_id, wanted, modseq, changed_since)
        )

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        wanted = list(uids)
        return await self._read(lambda conn: message_infos(conn, mailbox_id, wanted))

    async def fetch_with_bodies(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        max_bytes: int,
        *,
        max_each: int | None = None,
    ) -> list[tuple[MessageInfo, bytes | None]]:
        # `fetch` plus whole messages: the rows, then the chunks of those whose bytes
        # fit (`max_bytes` in all, `max_each` each), in one snapshot and two queries.
        wanted = list(uids)

        async def q(conn: Conn) -> list[tuple[MessageInfo, bytes | None]]:
            infos = await message_infos(conn, mailbox_id, wanted)
            chosen: list[int] = []
            total = 0
            for i, info in enumerate(infos):
                if total < max_bytes and (max_each is None or info.size <= max_each):
                    chosen.append(i)
                    total += info.size
            bodies = await _bodies(conn, mailbox_id, [(infos[i].uid, 0, None) for i in chosen])
            data: list[bytes | None] = [None] * len(infos)
            for i, body in zip(chosen, bodies, strict=True):
                data[i] = body
            return list(zip(infos, data, strict=True))

        return await self._read(q, snapshot=True)

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        (data,) = await self.read_messages(mailbox_id, [(uid, start, length)])
        if data is None:
            raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
        return data

    async def read_messages(
        self, mailbox_id: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        # One query for the whole batch: the rows and the chunks of their ranges
        # together (a FETCH of 50 bodies is one round trip, not 51).
        wanted = list(ranges)
        return await self._read(lambda conn: _bodies(conn, mailbox_id, wanted))

    async def select_snapshot(self, mailbox_id: int) -> tuple[list[int], MailboxStatus, int | None]:
        # SELECT from one snapshot: the UID list, the counters and the first unseen UID
        # are one statement (one snapshot, whatever commits meanwhile: as a REPEATABLE
        # READ transaction would give, without its BEGIN and COMMIT), one pass over
        # the rows and one round trip.
        async def q(conn: Conn) -> tuple[list[int], MailboxStatus, int | None]:
            row = await conn.fetchrow(
                "SELECT b.uidnext, b.uidvalidity, b.highestmodseq, c.* FROM mailboxes AS b"
                f" CROSS JOIN LATERAL (SELECT {COUNTER_COLUMNS},"
                f" min(uid) FILTER (WHERE flags & {SEEN} = 0), array_agg(uid)"
                " FROM messages WHERE mailbox_id = b.id) AS c WHERE b.id = $1",
                mailbox_id,
            )
            if row is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            status = counted_status((row[0], row[1], row[2]), tuple(row[3:8]))
            uids: list[int] = list(row[9]) if row[9] is not None else []
            uids.sort()
            return uids, status, row[8]

        return await self._read(q)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        query = search_sql.build(mailbox_id, key)

        async def q(conn: Conn) -> list[int]:
            check = query.check
            if check is not None:
                rows = await conn.fetch(query.sql, *query.params)
                return [r[0] for r in rows if check(r)]
            found = await conn.fetchval(query.sql, *query.params)
            uids: list[int] = list(found) if found is not None else []
            uids.sort()
            return uids

        return await self._read(q)

    async def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[FlagRow], list[int]]:
        # RFC 7162 §3.1.4.1 / §3.2.5.1: the rows changed and the UIDs expunged since
        # `modseq`, in one statement (one snapshot: a UID is never in both lists).
        async def q(conn: Conn) -> tuple[list[FlagRow], list[int]]:
            rows = await conn.fetch(
                "SELECT uid, flags, modseq, ARRAY(SELECT k.keyword FROM keywords AS k"
                " WHERE k.mailbox_id = m.mailbox_id AND k.uid = m.uid)"
                " FROM messages AS m WHERE mailbox_id = $1 AND modseq > $2"
                " UNION ALL SELECT uid, NULL, NULL, NULL FROM expunged"
                " WHERE mailbox_id = $1 AND modseq > $2 ORDER BY 1",
                mailbox_id,
                modseq,
            )
            changed: list[FlagRow] = []
            gone: list[int] = []
            for uid, bits, ms, keywords in rows:
                if bits is None:
                    gone.append(uid)
                else:
                    changed.append(FlagRow(uid, flag_set(bits, keywords), ms))
            return changed, gone

        return await self._read(q)

    async def pop_hidden(self, mailbox_id: int) -> set[int]:
        async def q(conn: Conn) -> set[int]:
            found = await conn.fetchval(
                "SELECT array_agg(uid) FROM messages WHERE mailbox_id = $1 AND pop_hidden <> 0",
                mailbox_id,
            )
            return set(found) if found is not None else set()

        return await self._read(q)
