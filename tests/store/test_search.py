"""SEARCH keys (RFC 9051 §6.4.4) translated to one query; TEXT/BODY via full text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pillarbox.model import (
    FlagMode,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSize,
    SearchText,
    SearchUids,
)
from tests.store.conftest import Env


@pytest.fixture
async def corpus(env: Env) -> Env:
    """Four messages with distinct headers, text, dates, sizes and flags."""
    await env.add(
        b"x" * 100,
        subject="Quarterly report",
        from_="Alice <alice@example.org>",
        to="bob@example.org",
        headers="Subject: Quarterly report\nX-Tracker: ticket-42\nList-Id: <dev.example.org>",
        text="The numbers look great this quarter. Café prices rose.",
        internaldate=datetime(2024, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-8))),
        sent_date=datetime(2024, 2, 28, 9, 0, tzinfo=UTC),
        flags=frozenset({"\\Seen"}),
    )
    await env.add(
        b"y" * 2000,
        subject="Lunch?",
        from_="Bob <bob@example.org>",
        to="alice@example.org",
        headers="Subject: Lunch?\nX-Mailer: Thing",
        text="Shall we eat at noon? ok",
        internaldate=datetime(2024, 3, 2, 12, 0, tzinfo=UTC),
        sent_date=datetime(2024, 3, 2, 11, 0, tzinfo=UTC),
        flags=frozenset({"$Work", "\\Flagged"}),
    )
    await env.add(
        b"z" * 500,
        subject="Ünïcode Straße",
        from_="Zoë <zoe@example.org>",
        headers="Subject: Ünïcode Straße",
        text="GROSSE STRASSE and Übermäßig",
        internaldate=datetime(2024, 3, 3, 8, 0, tzinfo=UTC),
    )
    await env.add(
        b"w" * 50,
        subject="report draft",
        headers="Subject: report draft",
        text="nothing to see",
        internaldate=datetime(2024, 3, 4, 8, 0, tzinfo=UTC),
        flags=frozenset({"\\Deleted"}),
    )
    return env


CASES: list[tuple[str, SearchKey, list[int]]] = [
    ("all", SearchAll(), [1, 2, 3, 4]),
    ("uids", SearchUids(((2, 3), (9, 12))), [2, 3]),
    ("seen", SearchFlag("\\seen"), [1]),
    ("unseen", SearchFlag("\\Seen", present=False), [2, 3, 4]),
    ("keyword any case", SearchFlag("$work"), [2]),
    ("unkeyword", SearchFlag("$Work", present=False), [1, 3, 4]),
    ("recent never", SearchFlag("\\Recent"), []),
    ("subject", SearchHeader("subject", "REPORT"), [1, 4]),
    ("subject unicode", SearchHeader("subject", "straße"), [3]),
    ("from", SearchHeader("from", "bob@"), [2]),
    ("to", SearchHeader("to", "alice"), [2]),
    ("cc empty field absent", SearchHeader("cc", ""), []),
    ("header other", SearchHeader("x-tracker", "TICKET-4"), [1]),
    ("header present", SearchHeader("x-mailer", ""), [2]),
    ("text in body", SearchText("numbers look"), [1]),
    ("text in header", SearchText("dev.example"), [1]),
    ("body not header", SearchText("dev.example", body_only=True), []),
    ("text case-insensitive", SearchText("SHALL WE"), [2]),
    ("text unicode fold", SearchText("übermäßig"), [3]),
    ("text short", SearchText("n?"), [2]),
    ("text short unicode", SearchText("é"), [1]),
    ("text quote", SearchText('say "hi"'), []),
    # Every trigram is there ("The numbers look", "great"), but not this string.
    ("text trigrams not contiguous", SearchText("look great numbers"), []),
    ("text trigrams split over header and body", SearchText("Quarterly numbers"), []),
    ("before", SearchDate("before", date(2024, 3, 2)), [1]),
    ("on own zone", SearchDate("on", date(2024, 3, 1)), [1]),
    ("since", SearchDate("since", date(2024, 3, 3)), [3, 4]),
    ("sentbefore", SearchDate("before", date(2024, 3, 1), sent=True), [1]),
    ("senton", SearchDate("on", date(2024, 3, 2), sent=True), [2]),
    (
        "sentsince falls back to internal date",
        SearchDate("since", date(2024, 3, 3), sent=True),
        [3, 4],
    ),
    ("larger", SearchSize("larger", 100), [2, 3]),
    ("smaller", SearchSize("smaller", 100), [4]),
    ("not", SearchNot(SearchHeader("subject", "report")), [2, 3]),
    ("or", SearchOr(SearchFlag("\\Seen"), SearchFlag("\\Deleted")), [1, 4]),
    (
        "and",
        SearchAnd((SearchText("report"), SearchFlag("\\Deleted", present=False))),
        [1],
    ),
    ("empty and", SearchAnd(()), [1, 2, 3, 4]),
]


@pytest.mark.parametrize(("name", "key", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_search_keys(corpus: Env, name: str, key: SearchKey, expected: list[int]) -> None:
    """Each key alone selects exactly the expected messages."""
    assert await corpus.store.search(corpus.inbox.id, key) == expected


async def test_search_modseq_and_many_ranges(corpus: Env) -> None:
    """MODSEQ n (RFC 7162 §3.1.5) and a UID set with many ranges."""
    s, box = corpus.store, corpus.inbox.id
    res = await s.set_flags(box, [3], frozenset({"\\Answered"}), FlagMode.ADD)
    assert await s.search(box, SearchModseq(res.changed[0].modseq)) == [3]
    ranges = tuple((u, u) for u in range(1, 200, 2))
    assert await s.search(box, SearchUids(ranges)) == [1, 3]


async def test_search_after_expunge_and_copy(corpus: Env) -> None:
    """The full-text index follows the blob: copies are found, expunged ones are not."""
    s, box = corpus.store, corpus.inbox.id
    other = await s.create_mailbox(corpus.account.id, "Other")
    await s.copy(box, [1], other.id)
    assert await s.search(other.id, SearchText("numbers")) == [1]
    await s.set_flags(box, [1], frozenset({"\\Deleted"}), FlagMode.ADD)
    await s.expunge(box)
    assert await s.search(box, SearchText("numbers")) == []
    assert await s.search(other.id, SearchText("numbers")) == [1]


async def test_search_right_after_delivery(env: Env) -> None:
    """Each message is found by TEXT, BODY (long and short needles) and HEADER the
    moment its append returned: on SQLite its text may still be waiting for the index
    (text_pending), and SEARCH must read it there (issue 18)."""
    for i in range(12):
        word = f"zebra{i:02d}quux"
        uid = await env.add(
            f"Subject: n{i}\r\n\r\n{word}\r\n".encode(),
            subject=f"n{i}",
            headers=f"Subject: n{i}\nX-Batch: lot-{i:02d}",
            text=f"Hello {word} Straße",
        )
        box = env.inbox.id
        assert await env.store.search(box, SearchText(word, body_only=True)) == [uid]
        assert await env.store.search(box, SearchText(word.upper(), body_only=False)) == [uid]
        assert await env.store.search(box, SearchHeader("x-batch", f"lot-{i:02d}")) == [uid]
        found = await env.store.search(box, SearchText("ss", body_only=True))  # short needle
        assert uid in found
        assert len(await env.store.search(box, SearchText("STRASSE", body_only=True))) == i + 1
