"""The PostgreSQL read side: SEARCH gives the SQLite backend's results on the same mail
(casefolding included), and the builder's pieces agree with Python.

Both backends keep the body casefolded and test the casefolded needle as a substring
(RFC 9051 §6.4.4), so "STRASSE" finds a body saying "Straße" on both (`CASEFOLDED`).
Headers and header columns (SUBJECT, FROM, HEADER ...) behave identically on both.

The two stores and their mail: `tests/store/postgres/twin.py`.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import (
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
from pillarbox.store.postgres import search as pg_search
from pillarbox.store.sqlite.search import header_match
from tests import pg
from tests.store.postgres import twin
from tests.store.postgres.twin import Box, mail, put


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
@pytest.fixture
async def pg_box(tmp_path: Path) -> AsyncIterator[Box]:
    async with twin.pg_box(tmp_path) as box:
        yield box


@pytest.fixture
async def sqlite_box(tmp_path: Path) -> AsyncIterator[Box]:
    async with twin.sqlite_box(tmp_path) as box:
        yield box


CORPUS = [
    mail(
        b"x" * 100,
        subject="Quarterly report",
        from_="Alice <alice@example.org>",
        to="bob@example.org",
        headers="Subject: Quarterly report\nX-Tracker: ticket-42\nList-Id: <dev.example.org>",
        text="The numbers look great this quarter. Café prices rose. 100% sure_ok C:\\Temp",
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
    ("text backslash", SearchText("c:\\temp")),
    ("text backslash short", SearchText("\\")),
    ("subject backslash", SearchHeader("subject", "\\")),
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

# Full case folding of the body on both backends (text_index.TEXT_VERSION on SQLite,
# `blob_text.body_cf` on PostgreSQL): an ASCII needle finds "ß" ("STRASSE" in a body
# saying "Straße"), and a needle with "SS" finds "übermäßig".
CASEFOLDED: dict[str, tuple[SearchKey, list[int]]] = {
    "text ascii sharp s": (SearchText("STRASSE"), [3, 4]),
    "text ss for sharp s": (SearchText("ÜBERMÄSSIG"), [3]),
}


async def test_search_same_results_as_sqlite(pg_box: Box, sqlite_box: Box) -> None:
    """Every key selects the same messages on both backends, Unicode case folding (ß,
    İ) included; an ASCII needle in a body folds fully on both."""
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
    for name, (key, uids) in CASEFOLDED.items():
        assert await sqlite_box.store.search(sqlite_box.mailbox_id, key) == uids, name
        assert await pg_box.store.search(pg_box.mailbox_id, key) == uids, name


async def test_search_thread_and_results(pg_box: Box) -> None:
    """Spot checks of the expected answers themselves (not only agreement)."""
    for m in CORPUS:
        await put(pg_box, m)
    s, box = pg_box.store, pg_box.mailbox_id
    assert await s.search(box, SearchHeader("subject", "ß")) == [3, 4]
    assert await s.search(box, SearchHeader("subject", "STRASSE")) == []
    assert await s.search(box, SearchText("İstanbul")) == [3]
    assert await s.search(box, SearchHeader("x-indented", "really")) == [2]
    assert await s.search(box, SearchText("c:\\temp")) == [1]
    assert await s.search(box, SearchText("\\")) == [1]
    assert await s.search(box, SearchText("0%")) == [1]
    assert await s.search(box, SearchDate("before", date(1970, 1, 1))) == [4]
    (info,) = await s.fetch(box, [2])
    assert await s.search(box, SearchThreadId(info.thread_id)) == [2]


async def test_header_regex_is_pb_header(tmp_path: Path) -> None:
    """HEADER's regular expression over the casefolded block decides exactly as the
    SQLite backend's `pb_header` over the block, on random blocks, names and values
    made of the characters that matter (separators, blanks, line breaks of every
    kind, regular-expression metacharacters, letters that fold to several)."""
    alphabet = ["a", "B", "x", "-", ":", " ", "\t", "\n", "\r", "\x85", "\u2028", "\xa0"]
    alphabet += ["ß", "S", "İ", "i", "K", "\u212a", ".", "*", "(", "\\", "[", "^", "$", "|"]
    rng = random.Random(17)

    def text(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    cases = []
    for _ in range(3000):
        headers = text(30)
        if rng.random() < 0.5:  # a field that is there, so matches are not all chance
            name = rng.choice(["x-a", "Subject", "ß", "a.b"])
            headers += rng.choice(["\n", "\r\n", "\u2028"]) + f" {name} :{text(8)}"
        field = rng.choice(["x-a", "X-A", "subject", "ss", "SS", "a.b", "a*b", text(4)])
        value = text(4)
        cases.append((headers, field, value))
    patterns = [pg_search.header_regex(f, v) for _, f, v in cases]
    dsn = pg.database(str(tmp_path / "regex"))
    conn = await asyncpg.connect(dsn)
    try:
        got = await conn.fetchval(
            "SELECT array_agg(coalesce(h ~ p, FALSE) ORDER BY i)"
            " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c(h, p, i)",
            [h.casefold() for h, _, _ in cases],
            patterns,
        )
    finally:
        await conn.close()
    want = [bool(header_match(h, f, v)) for h, f, v in cases]
    assert sum(want) > 50
    assert [c for c, g, w in zip(cases, got, want, strict=True) if g != w] == []
