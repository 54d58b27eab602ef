"""The PostgreSQL read side: SEARCH gives the SQLite backend's results on the same mail
(casefolding included), and the read methods decode rows and chunked bodies right.

Known differences, asserted below (`DIVERGENT`), both where the SQLite backend misses
a match: it checks an ASCII TEXT/BODY needle with LIKE on the stored text (ASCII-only
folding), while PostgreSQL keeps the body casefolded only (`blob_text.body_cf`), so
there "STRASSE" also finds a body saying "Straße"; and SQLite's FTS5 trigram filter
folds "ß" otherwise than casefold(), so "ÜBERMÄSSIG" misses "übermäßig" there. Both
answers on PostgreSQL are RFC 9051 §6.4.4's full case folding. Headers and header
columns (SUBJECT, FROM, HEADER ...) behave identically on both.

Until the message writes of the PostgreSQL backend exist, mail is stored in it with the
rows its `append` writes (`_seed`); `put` uses `append` as soon as it works.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import (
    MessageMeta,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSaveDate,
    SearchSize,
    SearchText,
    SearchThreadId,
    SearchUids,
)
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.postgres import PgStore
from pillarbox.store.postgres import search as pg_search
from pillarbox.store.postgres.reading import CHUNK
from pillarbox.store.sqlite import SqliteStore
from pillarbox.store.sqlite.flags import split_flags
from tests import pg
from tests.store.conftest import dummy_meta, write_blob


# --- the builder's pieces against Python ---------------------------------------------
def test_line_breaks_and_blanks_are_pythons() -> None:
    """The regular expression's idea of a line and of blanks is `str.splitlines` and
    `str.strip`, so HEADER matches as `pb_header` does."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    breaks = {c for c in chars if len(("a" + c + "b").splitlines()) == 2}
    assert breaks == set(pg_search.LINE_BREAKS)
    blanks = set()
    for part in pg_search.BLANKS.split("-"):
        blanks |= set(part)
    blanks |= {chr(c) for c in range(0x2000, 0x200B)}
    assert blanks == {c for c in chars if c.isspace()} - breaks


def test_header_regex_refuses_what_never_matches() -> None:
    assert pg_search.header_regex("", "x") is None
    assert pg_search.header_regex("a:b", "x") is None
    assert pg_search.header_regex(" subject", "x") is None
    assert pg_search.header_regex("subject", "a\nb") is None
    assert pg_search.header_regex("X-A.B", "(1+1)") == (
        f"(^|[{pg_search.LINE_BREAKS}])[{pg_search.BLANKS}]*x\\-a\\.b[{pg_search.BLANKS}]*:"
        f"[^{pg_search.LINE_BREAKS}]*\\(1\\+1\\)"
    )


# --- two stores, the same mail --------------------------------------------------------
@dataclass
class Mail:
    data: bytes
    meta: MessageMeta
    flags: frozenset[str] = frozenset()
    internaldate: datetime = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)


@dataclass
class Box:
    store: Store
    mailbox_id: int
    dsn: str = ""
    uids: list[int] = field(default_factory=list)


def mail(
    data: bytes,
    flags: frozenset[str] = frozenset(),
    internaldate: datetime = datetime(2024, 5, 17, 10, 0, tzinfo=UTC),
    **meta: object,
) -> Mail:
    return Mail(data, dummy_meta(data, **meta), flags, internaldate)  # type: ignore[arg-type]


async def _seed(dsn: str, mailbox_id: int, m: Mail) -> int:
    """The rows the PostgreSQL `append` writes for `m` (blob, chunks, search text,
    message, keywords); its UID."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            meta = m.meta
            sent = meta.sent_date
            blob_id = await conn.fetchval(
                "INSERT INTO blobs (size, envelope, bodystructure, body, parts, preview,"
                " subject, from_, to_, cc, bcc, message_id, sent_date, sent_day, thread_refs)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                " RETURNING id",
                len(m.data),
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
                sent.isoformat() if sent else None,
                sent.date().isoformat() if sent else None,
                meta.references,
            )
            await conn.executemany(
                "INSERT INTO blob_chunks (blob_id, seq, data) VALUES ($1, $2, $3)",
                [
                    (blob_id, i, m.data[i * CHUNK : (i + 1) * CHUNK])
                    for i in range((len(m.data) + CHUNK - 1) // CHUNK)
                ],
            )
            await conn.execute(
                "INSERT INTO blob_text (blob_id, headers, headers_cf, body_cf)"
                " VALUES ($1, $2, $3, $4)",
                blob_id,
                meta.headers,
                meta.headers.casefold(),
                meta.body_text.casefold(),
            )
            uid, modseq = await conn.fetchrow(
                "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1"
                " WHERE id = $1 RETURNING uidnext - 1, highestmodseq",
                mailbox_id,
            )
            bits, keywords = split_flags(m.flags)
            when = m.internaldate
            offset = when.utcoffset() or timedelta(0)
            await conn.execute(
                "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate,"
                " internal_tz, size, blob_id, savedate, thread_id)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
                mailbox_id,
                uid,
                modseq,
                bits,
                int(when.timestamp()),
                int(offset.total_seconds() // 60),
                len(m.data),
                blob_id,
                int(datetime.now(UTC).timestamp()),
            )
            await conn.executemany(
                "INSERT INTO keywords (mailbox_id, uid, keyword) VALUES ($1, $2, $3)",
                [(mailbox_id, uid, k) for k in keywords.values()],
            )
            return int(uid)
    finally:
        await conn.close()


async def put(box: Box, m: Mail) -> int:
    """Store `m` in `box` through the contract, or (PostgreSQL, until its message writes
    exist) as the rows they write."""
    try:
        blob = await write_blob(box.store, m.data)
        uid = (await box.store.append(box.mailbox_id, blob, m.meta, m.flags, m.internaldate)).uid
    except NotImplementedError:
        uid = await _seed(box.dsn, box.mailbox_id, m)
    box.uids.append(uid)
    return uid


async def _pg_mailbox(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        domain = await conn.fetchval(
            "INSERT INTO domains (name) VALUES ('example.org') RETURNING id"
        )
        account = await conn.fetchval(
            "INSERT INTO accounts (address, domain_id, password_hash)"
            " VALUES ('alice@example.org', $1, 'x') RETURNING id",
            domain,
        )
        return int(
            await conn.fetchval(
                "INSERT INTO mailboxes (account_id, name, uidvalidity)"
                " VALUES ($1, 'INBOX', 1) RETURNING id",
                account,
            )
        )
    finally:
        await conn.close()


async def _mailbox(store: Store) -> int:
    await store.add_domain("example.org")
    account = await store.add_account("alice@example.org", "$argon2id$dummy")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    return inbox.id


@pytest.fixture
async def pg_box(tmp_path: Path) -> AsyncIterator[Box]:
    dsn = pg.database(str(tmp_path / "pg"))
    bus = InProcessChangeBus()
    store = PgStore(dsn, bus=bus, node_id="test-node", pool_min=1, pool_max=4)
    await store.open()
    try:
        try:
            mailbox_id = await _mailbox(store)
        except NotImplementedError:
            mailbox_id = await _pg_mailbox(dsn)
        yield Box(store, mailbox_id, dsn)
    finally:
        await store.close()
        bus.close()


@pytest.fixture
async def sqlite_box(tmp_path: Path) -> AsyncIterator[Box]:
    bus = InProcessChangeBus()
    store = SqliteStore(tmp_path / "sqlite", bus=bus)
    await store.open()
    try:
        yield Box(store, await _mailbox(store))
    finally:
        await store.close()
        bus.close()


CORPUS = [
    mail(
        b"x" * 100,
        subject="Quarterly report",
        from_="Alice <alice@example.org>",
        to="bob@example.org",
        headers="Subject: Quarterly report\nX-Tracker: ticket-42\nList-Id: <dev.example.org>",
        text="The numbers look great this quarter. Café prices rose. 100% sure_ok",
        internaldate=datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-8))),
        sent_date=datetime(2024, 2, 28, 9, 0, tzinfo=UTC),
        flags=frozenset({"\\Seen"}),
    ),
    mail(
        b"y" * 2000,
        subject="Lunch?",
        from_="Bob <bob@example.org>",
        to="alice@example.org",
        headers="Subject: Lunch?\r\nX-Mailer: Thing\r\n  X-Indented : yes (really)",
        text="Shall we eat at noon? ok",
        internaldate=datetime(2024, 3, 2, 12, 0, tzinfo=UTC),
        sent_date=datetime(2024, 3, 2, 11, 0, tzinfo=UTC),
        flags=frozenset({"$Work", "\\Flagged"}),
    ),
    mail(
        b"z" * 500,
        subject="Straße İstanbul",
        from_="Zoë <zoe@example.org>",
        headers="Subject: Straße İstanbul\nX-City: İZMİR\nX-Note: Fuß",
        text="Die STRASSE in İSTANBUL, übermäßig",
        internaldate=datetime(2024, 3, 3, 8, 0, tzinfo=UTC),
    ),
    mail(
        b"w" * 50,
        subject="GROSSE report",
        headers="Subject: GROSSE report",
        text="fuss and straße",
        internaldate=datetime(1969, 12, 31, 23, 0, tzinfo=UTC),
        flags=frozenset({"\\Deleted", "Café"}),
    ),
]

KEYS: list[tuple[str, SearchKey]] = [
    ("subject ascii", SearchHeader("subject", "REPORT")),
    ("subject ascii no full folding", SearchHeader("subject", "STRASSE")),
    ("subject sharp s", SearchHeader("subject", "straße")),
    ("subject sharp s alone", SearchHeader("subject", "ß")),
    ("subject dotted I", SearchHeader("subject", "İstanbul")),
    ("subject dotless ascii", SearchHeader("subject", "istanbul")),
    ("subject tail", SearchHeader("subject", "stanbul")),
    ("from unicode", SearchHeader("from", "ZOË")),
    ("not subject unicode", SearchNot(SearchHeader("subject", "straße"))),
    (
        "or subject unicode",
        SearchOr(SearchHeader("subject", "ß"), SearchFlag("\\Seen")),
    ),
    (
        "and not or unicode",
        SearchAnd(
            (
                SearchNot(SearchOr(SearchHeader("subject", "İ"), SearchFlag("\\Deleted"))),
                SearchSize("larger", 10),
            )
        ),
    ),
    ("header dotted I", SearchHeader("x-city", "İZMİR")),
    ("header dotted I partial", SearchHeader("x-city", "İzmir")),
    ("header sharp s", SearchHeader("X-NOTE", "fuss")),
    ("header indented name", SearchHeader("x-indented", "(REALLY)")),
    ("header present", SearchHeader("x-mailer", "")),
    ("header regex chars", SearchHeader("list-id", "<dev.example")),
    ("header no field", SearchHeader("x-tracker", "mailer")),
    ("text sharp s", SearchText("straße")),
    ("text sharp s alone", SearchText("ß")),
    ("text dotted I", SearchText("İstanbul")),
    ("body ascii dotless", SearchText("istanbul", body_only=True)),
    ("text umlaut fold", SearchText("ÜBERMÄßIG")),
    ("text percent", SearchText("100%")),
    ("text underscore", SearchText("e_o")),
    ("text underscore literal", SearchText("sure_ok")),
    ("text short", SearchText("n?")),
    ("text header only", SearchText("dev.example")),
    ("keyword unicode", SearchFlag("café")),
    ("keyword ascii case", SearchFlag("$WORK")),
    ("before epoch", SearchDate("before", date(1970, 1, 1))),
    ("on own zone", SearchDate("on", date(2024, 3, 1))),
    ("senton", SearchDate("on", date(2024, 3, 2), sent=True)),
    ("sentbefore falls back", SearchDate("before", date(2024, 3, 1), sent=True)),
    ("savedate today", SearchSaveDate("since", datetime.now(UTC).date() - timedelta(days=1))),
    ("uids many ranges", SearchUids(tuple((u, u) for u in range(1, 100, 2)))),
    ("uids few ranges", SearchUids(((2, 3),))),
]

# (key name) -> (SQLite's UIDs, PostgreSQL's UIDs). SQLite misses "Straße" for an
# ASCII needle in a body (LIKE folds ASCII only, and PostgreSQL has only the casefolded
# body), and for a needle whose FTS5 trigrams fold otherwise than casefold() ("SSI" is
# no trigram of "übermäßig", though "übermässig" is its casefold).
DIVERGENT: dict[str, tuple[list[int], list[int]]] = {
    "text ascii sharp s": ([3], [3, 4]),
    "text ss for sharp s": ([], [3]),
}
DIVERGENT_KEYS: dict[str, SearchKey] = {
    "text ascii sharp s": SearchText("STRASSE"),
    "text ss for sharp s": SearchText("ÜBERMÄSSIG"),
}


async def test_search_same_results_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    """Every key selects the same messages on both backends, Unicode case folding (ß,
    İ) included; an ASCII needle in a body folds fully on PostgreSQL only."""
    for m in CORPUS:
        await put(pg_box, m)
        await put(sqlite_box, m)
    assert pg_box.uids == sqlite_box.uids == [1, 2, 3, 4]
    differ = []
    for name, key in KEYS:
        want = await sqlite_box.store.search(sqlite_box.mailbox_id, key)
        got = await pg_box.store.search(pg_box.mailbox_id, key)
        if got != want:
            differ.append((name, want, got))
    assert differ == []
    for name, key in DIVERGENT_KEYS.items():
        sqlite_uids, pg_uids = DIVERGENT[name]
        assert await sqlite_box.store.search(sqlite_box.mailbox_id, key) == sqlite_uids
        assert await pg_box.store.search(pg_box.mailbox_id, key) == pg_uids


async def test_search_thread_and_results(pg_box: Box) -> None:
    """Spot checks of the expected answers themselves (not only agreement)."""
    for m in CORPUS:
        await put(pg_box, m)
    s, box = pg_box.store, pg_box.mailbox_id
    assert await s.search(box, SearchHeader("subject", "ß")) == [3, 4]
    assert await s.search(box, SearchHeader("subject", "STRASSE")) == []
    assert await s.search(box, SearchText("İstanbul")) == [3]
    assert await s.search(box, SearchHeader("x-indented", "really")) == [2]
    assert await s.search(box, SearchDate("before", date(1970, 1, 1))) == [4]
    (info,) = await s.fetch(box, [2])
    assert await s.search(box, SearchThreadId(info.thread_id)) == [2]
