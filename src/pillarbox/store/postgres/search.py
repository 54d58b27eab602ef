"""Translation of a `model.SearchKey` tree into one PostgreSQL query (RFC 9051 §6.4.4).

IMAP SEARCH is substring search, case-insensitive (RFC 9051 §6.4.4); the SQLite backend
is the reference for what matches, and this module gives the same results:

  * TEXT/BODY: `blob_text.body_cf` / `headers_cf` hold `str.casefold()` of the text
    (written at delivery), so `body_cf LIKE '%' || needle.casefold() || '%'` is the
    SQLite backend's `pb_contains`. pg_trgm's GIN indexes answer it for needles of
    three or more characters (and recheck exactly); shorter ones are checked row by
    row on the mailbox's candidates, as SQLite falls back to LIKE.
  * The SQLite backend checks an ASCII needle with LIKE, which folds ASCII letters only
    ("ss" does not find "ß" there). Where the raw text is kept (`blob_text.headers`,
    the `blobs` header columns) this backend does the same with ILIKE on a COLLATE "C"
    column (ASCII-only folding as well). The body is kept casefolded only, so an ASCII
    needle in a body folds fully: "ss" finds "ß" in a body here, and SQLite's FTS5
    filter, which folds "ß" otherwise, has no counterpart (both differences are
    asserted in tests/store/postgres/test_search_pg.py).
  * HEADER on a field without a column: a regular expression over `headers_cf` that
    is `pb_header` line by line (field name, optional blanks, colon, value anywhere
    after it); pg_trgm indexes regular expressions too.
  * SUBJECT/FROM/... with a non-ASCII needle need full case folding of a column that
    is stored as is; PostgreSQL 15 has no casefold(), so those leaves are decided in
    Python (`PgSearch.check`) over the rows one query returns. The query's WHERE is
    then the tree with each such leaf replaced by what cannot lose a match (TRUE where
    it counts positively, FALSE under an odd number of NOTs), so Python only sees
    candidates, and one query is still all a SEARCH costs.

Must not: execute queries; `build` only returns SQL, parameters and the check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import asyncpg

from pillarbox.model import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchEmailId,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSaveDate,
    SearchSize,
    SearchText,
    SearchThreadId,
    SearchUids,
    SearchWithin,
    canonical_flag,
)
from pillarbox.store.flags import FLAG_BITS

# Header fields that have their own column on `blobs` (precomputed by message/).
_HEADER_COLUMNS = {
    "subject": "b.subject",
    "from": "b.from_",
    "to": "b.to_",
    "cc": "b.cc",
    "bcc": "b.bcc",
    "message-id": "b.message_id",
}

# The day (days since the epoch) of the internal date in its own zone, and of the save
# date (RFC 8514 §4.3: kept in UTC; rows saved before save dates were kept use their
# internal date). floor(), not div(): div() truncates towards zero before 1970.
_INTERNAL_SECONDS = "(m.internaldate + m.internal_tz * 60)"
_INTERNAL_DAY = f"floor({_INTERNAL_SECONDS} / 86400.0)"
_SAVED_DAY = f"floor(coalesce(m.savedate, {_INTERNAL_SECONDS}) / 86400.0)"
_DATE_OPS = {"before": "<", "on": "=", "since": ">="}
_EPOCH = date(1970, 1, 1)

# What `str.splitlines` splits on, and what `str.strip` strips within a line (Python's
# str.isspace minus the line breaks): `pb_header`'s view of a header block, spelled as
# regular-expression bracket contents. tests/store/postgres/test_search_pg.py checks
# both against Python.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
BLANKS = "\t\x1f \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
# ARE metacharacters (all ASCII): escaped with a backslash; a backslash before a
# letter or digit would be an escape of its own, so only these are escaped.
_RE_SPECIAL = frozenset("\\^$.|?*+()[]{}-")

Check = Callable[[asyncpg.Record], bool]


@dataclass(frozen=True, slots=True)
class PgSearch:
    """One SELECT. Without `check`: one row, one column, the array of the matching
    UIDs (unordered; a record per match would cost more than the query). With it:
    candidate rows, uid first, ascending, and the UIDs are those `check` accepts."""

    sql: str
    params: list[object]
    check: Check | None = None


def like_pattern(value: str) -> str:
    """`value` anywhere, for LIKE/ILIKE with the default escape character."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def re_escape(value: str) -> str:
    """`value` as a literal in a PostgreSQL advanced regular expression."""
    return "".join("\\" + c if c in _RE_SPECIAL else c for c in value)


def header_regex(field: str, value: str) -> str | None:
    """A regular expression over the casefolded header block matching exactly where
    `pb_header(headers, field, value)` holds; None when it can never hold."""
    name, needle = field.casefold(), value.casefold()
    breaks = set(LINE_BREAKS)
    # A line's name is stripped and ends at its first colon; no line holds a break.
    if not name or name != name.strip() or ":" in name or breaks & set(name + needle):
        return None
    return (
        f"(^|[{LINE_BREAKS}])[{BLANKS}]*{re_escape(name)}[{BLANKS}]*:"
        f"[^{LINE_BREAKS}]*{re_escape(needle)}"
    )


def _python_leaf(key: SearchKey) -> bool:
    """A leaf only Python can decide: full case folding of a stored header column."""
    return (
        isinstance(key, SearchHeader)
        and key.field.lower() in _HEADER_COLUMNS
        and key.value != ""
        and not key.value.isascii()
    )


def _needs_python(key: SearchKey) -> bool:
    match key:
        case SearchNot(key=inner):
            return _needs_python(inner)
        case SearchOr(left=left, right=right):
            return _needs_python(left) or _needs_python(right)
        case SearchAnd(keys=keys):
            return any(_needs_python(k) for k in keys)
    return _python_leaf(key)


class _Builder:
    def __init__(self, mailbox_id: int) -> None:
        self.params: list[object] = [mailbox_id]
        self.columns: list[str] = ["m.uid"]
        self.uses_blob = False  # whether a condition reads `blobs` (alias b)
        self._sql: dict[int, str] = {}

    def param(self, value: object, cast: str = "") -> str:
        self.params.append(value)
        return f"${len(self.params)}{cast}"

    def column(self, expr: str) -> int:
        self.columns.append(expr)
        return len(self.columns) - 1

    # --- SQL ---------------------------------------------------------------------
    def sql(self, key: SearchKey) -> str:
        """The condition of a tree without Python leaves (built once per node)."""
        done = self._sql.get(id(key))
        if done is None:
            done = self._sql[id(key)] = self._clause(key)
        return done

    def _clause(self, key: SearchKey) -> str:
        match key:
            case SearchAll():
                return "TRUE"
            case SearchUids(uids=ranges):
                if not ranges:
                    return "FALSE"
                if len(ranges) <= 32:
                    parts = []
                    for lo, hi in ranges:
                        low, high = self.param(lo, "::bigint"), self.param(hi, "::bigint")
                        parts.append(f"m.uid BETWEEN {low} AND {high}")
                    return "(" + " OR ".join(parts) + ")"
                los = self.param([lo for lo, _ in ranges], "::bigint[]")
                his = self.param([hi for _, hi in ranges], "::bigint[]")
                return (
                    f"EXISTS (SELECT 1 FROM unnest({los}, {his}) AS r(lo, hi)"
                    " WHERE m.uid BETWEEN r.lo AND r.hi)"
                )
            case SearchFlag(flag=flag, present=present):
                flag = canonical_flag(flag)
                bit = FLAG_BITS.get(flag)
                if bit is not None:
                    return f"(m.flags & {bit}) {'<>' if present else '='} 0"
                if flag.startswith("\\"):  # \Recent and other non-keywords: never set
                    return "FALSE" if present else "TRUE"
                # Keywords compare with ASCII-only folding (SQLite's NOCASE; lower() of
                # a COLLATE "C" column), through the keywords_by_name index.
                wanted = self.param(_ascii_lower(flag), "::text")
                exists = (
                    "EXISTS (SELECT 1 FROM keywords AS k WHERE k.mailbox_id = m.mailbox_id"
                    f" AND k.uid = m.uid AND lower(k.keyword) = {wanted})"
                )
                return exists if present else f"NOT {exists}"
            case SearchHeader(field=field, value=value):
                name = field.lower()
                column = _HEADER_COLUMNS.get(name)
                if column is not None:
                    self.uses_blob = True
                    if value == "":
                        return f"{column} <> ''"
                    if not value.isascii():  # pragma: no cover - routed to Python
                        raise AssertionError("non-ASCII header needle is a Python leaf")
                    return f"{column} ILIKE {self.param(like_pattern(value), '::text')}"
                pattern = header_regex(field, value)
                if pattern is None:
                    return "FALSE"
                return (
                    "m.blob_id IN (SELECT t.blob_id FROM blob_text AS t"
                    f" WHERE t.headers_cf ~ {self.param(pattern, '::text')})"
                )
            case SearchText(value=value, body_only=body_only):
                if value == "":
                    return "TRUE"
                folded = value.casefold()
                cf = self.param(like_pattern(folded), "::text")
                parts = [f"t.body_cf LIKE {cf}"]
                if not body_only:
                    if value.isascii():
                        # As SQLite's LIKE: ASCII folding only, on the text as stored;
                        # the casefolded column (indexed) narrows first.
                        raw = self.param(like_pattern(value), "::text")
                        parts.append(f"(t.headers_cf LIKE {cf} AND t.headers ILIKE {raw})")
                    else:
                        parts.append(f"t.headers_cf LIKE {cf}")
                check = " OR ".join(parts)
                if len(folded) >= 3:
                    return f"m.blob_id IN (SELECT t.blob_id FROM blob_text AS t WHERE {check})"
                # Trigrams cannot index a shorter needle: test the mailbox's own rows.
                return (
                    "EXISTS (SELECT 1 FROM blob_text AS t"
                    f" WHERE t.blob_id = m.blob_id AND ({check}))"
                )
            case SearchDate(op=op, day=day, sent=sent):
                sql_op = _DATE_OPS[op]
                internal = f"{_INTERNAL_DAY} {sql_op} {self.param(_day_number(day), '::bigint')}"
                if not sent:
                    return internal
                # coalesce(sent_day, the internal day) compared as SQLite compares it.
                self.uses_blob = True
                iso = self.param(day.isoformat(), "::text")
                return (
                    f"(CASE WHEN b.sent_day IS NOT NULL THEN b.sent_day {sql_op} {iso}"
                    f" ELSE {internal} END)"
                )
            case SearchSaveDate(op=op, day=day):
                return f"{_SAVED_DAY} {_DATE_OPS[op]} {self.param(_day_number(day), '::bigint')}"
            case SearchWithin(op=op, cutoff=cutoff) if cutoff is not None:
                # RFC 5032 §3: OLDER, internal date before now minus the interval;
                # YOUNGER, within the interval.
                cut = self.param(cutoff, "::bigint")
                return f"m.internaldate < {cut}" if op == "older" else f"m.internaldate >= {cut}"
            case SearchSize(op=op, size=size):
                limit = self.param(size, "::bigint")
                return f"m.size > {limit}" if op == "larger" else f"m.size < {limit}"
            case SearchModseq(modseq=modseq):
                return f"m.modseq >= {self.param(modseq, '::bigint')}"
            case SearchEmailId(blob_id=blob_id):
                if blob_id is None:
                    return "FALSE"
                return f"m.blob_id = {self.param(blob_id, '::bigint')}"
            case SearchThreadId(thread_id=thread_id):
                if thread_id is None:
                    return "FALSE"
                return f"m.thread_id = {self.param(thread_id, '::bigint')}"
            case SearchNot(key=inner):
                return f"NOT ({self.sql(inner)})"
            case SearchOr(left=left, right=right):
                return f"(({self.sql(left)}) OR ({self.sql(right)}))"
            case SearchAnd(keys=keys):
                if not keys:
                    return "TRUE"
                return "(" + " AND ".join(f"({self.sql(k)})" for k in keys) + ")"
        # SearchSequence and SearchWithin (its cutoff) are resolved by the session before
        # the store sees the key (see `model.search`).
        raise ValueError(f"search key not resolved for the store: {key!r}")

    # --- trees with Python leaves --------------------------------------------------
    def prefilter(self, key: SearchKey, positive: bool = True) -> str:
        """A condition every match satisfies: Python leaves become TRUE where they
        count positively and FALSE under an odd number of NOTs."""
        if not _needs_python(key):
            return self.sql(key)
        match key:
            case SearchNot(key=inner):
                return f"NOT ({self.prefilter(inner, not positive)})"
            case SearchOr(left=left, right=right):
                return (
                    f"(({self.prefilter(left, positive)}) OR ({self.prefilter(right, positive)}))"
                )
            case SearchAnd(keys=keys):
                return "(" + " AND ".join(f"({self.prefilter(k, positive)})" for k in keys) + ")"
        return "TRUE" if positive else "FALSE"

    def checker(self, key: SearchKey) -> Check:
        """The exact decision for one row, from the columns this adds to the SELECT."""
        if not _needs_python(key):
            index = self.column(f"coalesce({self.sql(key)}, FALSE)")
            return lambda row: bool(row[index])
        match key:
            case SearchNot(key=inner):
                inner_check = self.checker(inner)
                return lambda row: not inner_check(row)
            case SearchOr(left=left, right=right):
                left_check, right_check = self.checker(left), self.checker(right)
                return lambda row: left_check(row) or right_check(row)
            case SearchAnd(keys=keys):
                checks = [self.checker(k) for k in keys]
                return lambda row: all(c(row) for c in checks)
            case SearchHeader(field=field, value=value):
                self.uses_blob = True
                index = self.column(_HEADER_COLUMNS[field.lower()])
                needle = value.casefold()
                # The SQLite backend's pb_contains: full Unicode case folding.
                return lambda row: needle in (row[index] or "").casefold()
        raise AssertionError(f"not a Python leaf: {key!r}")  # pragma: no cover


def _ascii_lower(value: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in value)


def _day_number(day: date) -> int:
    return (day - _EPOCH).days


def build(mailbox_id: int, key: SearchKey) -> PgSearch:
    """The query for the UIDs of `mailbox_id` matching `key` (see `PgSearch`)."""
    builder = _Builder(mailbox_id)
    if not _needs_python(key):
        where = builder.sql(key)
        check: Check | None = None
        select = "array_agg(m.uid)"
        order = ""
    else:
        check = builder.checker(key)
        where = builder.prefilter(key)
        select = ", ".join(builder.columns)
        order = " ORDER BY m.uid"
    # Every row has its blob (a foreign key): joined only for a condition on it.
    blobs = " JOIN blobs AS b ON b.id = m.blob_id" if builder.uses_blob else ""
    sql = (
        f"SELECT {select} FROM messages AS m{blobs}"
        f" WHERE m.mailbox_id = $1::bigint AND ({where}){order}"
    )
    return PgSearch(sql, builder.params, check)
