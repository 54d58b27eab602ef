"""Translation of a `model.SearchKey` tree into one SQLite query (RFC 9051 §6.4.4).

Owns: the SQL for every search key and the two Python SQL functions the query may call
(`pb_contains` for case-insensitive non-ASCII substrings, `pb_header` for HEADER on a
field that has no column). TEXT and BODY go to the FTS5 trigram index, so searching
never reads message files; needles shorter than three characters (which trigrams
cannot index) fall back to LIKE on the indexed text of each candidate row. Texts not
yet in the index are in ``text_pending`` (committed with their rows, indexed after:
see `text_index`); every key that reads the text reads that table too, so results are
exact while the index catches up. The caller must read ``pillarbox.db`` before
search.db in its read transaction (`SqliteStore.search` does).

Must not: execute queries or touch files; `build` only returns SQL and parameters.
"""

from __future__ import annotations

import json
import re
import sqlite3

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

# A blob column in a condition (every clause names blob columns as ``b.<name>``).
_BLOB_COLUMN = re.compile(r"\bb\.(\w+)")
# Blob columns with a narrow covering index of their own (sqlite_0017).
_COVERING_INDEXES = {
    frozenset({"subject"}): "blobs_subject",
    frozenset({"from_"}): "blobs_from",
}

_INTERNAL_DAY = "date(m.internaldate + m.internal_tz * 60, 'unixepoch')"
# RFC 8514 §4.3: the save date's day (kept in UTC); rows saved before save dates were
# kept use their internal date, as a mailbox without save dates would.
_SAVED_DAY = f"coalesce(date(m.savedate, 'unixepoch'), {_INTERNAL_DAY})"
_DATE_OPS = {"before": "<", "on": "=", "since": ">="}


def contains(haystack: str | None, needle: str | None) -> int:
    """Case-insensitive substring test with full Unicode case folding."""
    if haystack is None or needle is None:
        return 0
    return int(needle.casefold() in haystack.casefold())


def header_match(headers: str | None, field: str | None, value: str | None) -> int:
    """RFC 9051 §6.4.4 HEADER: a field of that name whose value contains `value`
    ("" matches any message that has the field). `headers` is the unfolded block."""
    if not headers or not field or value is None:
        return 0
    wanted = field.casefold()
    needle = value.casefold()
    for line in headers.splitlines():
        name, sep, rest = line.partition(":")
        if sep and name.strip().casefold() == wanted and needle in rest.casefold():
            return 1
    return 0


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("pb_contains", 2, contains, deterministic=True)
    conn.create_function("pb_header", 3, header_match, deterministic=True)


def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _substring(column: str, value: str, params: list[object]) -> str:
    """`column` contains `value`, ignoring case (LIKE is ASCII-only, so not for others)."""
    if value.isascii():
        params.append(_like_pattern(value))
        return f"{column} LIKE ? ESCAPE '\\'"
    params.append(value)
    return f"pb_contains({column}, ?)"


def _fts_trigrams(value: str) -> str:
    """An FTS5 query for rows holding every three-character piece of `value` (the
    trigram tokenizer's tokens; it folds case the same way on both sides)."""
    pieces = dict.fromkeys(value[i : i + 3] for i in range(len(value) - 2))
    return " AND ".join('"' + piece.replace('"', '""') + '"' for piece in pieces)


def _clause(key: SearchKey, params: list[object]) -> str:
    match key:
        case SearchAll():
            return "1"
        case SearchUids(uids=ranges):
            if not ranges:
                return "0"
            if len(ranges) <= 32:
                parts = []
                for lo, hi in ranges:
                    params.extend((lo, hi))
                    parts.append("m.uid BETWEEN ? AND ?")
                return "(" + " OR ".join(parts) + ")"
            params.append(json.dumps([list(r) for r in ranges]))
            return (
                "EXISTS (SELECT 1 FROM json_each(?) AS r"
                " WHERE m.uid BETWEEN r.value ->> 0 AND r.value ->> 1)"
            )
        case SearchFlag(flag=flag, present=present):
            flag = canonical_flag(flag)
            bit = FLAG_BITS.get(flag)
            if bit is not None:
                return f"(m.flags & {bit}) {'!=' if present else '='} 0"
            if flag.startswith("\\"):  # \Recent and other non-keywords: never set
                return "0" if present else "1"
            params.append(flag)
            exists = (
                "EXISTS (SELECT 1 FROM keywords AS k WHERE k.mailbox_id = m.mailbox_id"
                " AND k.uid = m.uid AND k.keyword = ?)"
            )
            return exists if present else f"NOT {exists}"
        case SearchHeader(field=field, value=value):
            name = field.lower()
            column = _HEADER_COLUMNS.get(name)
            if column is not None:
                if value == "":
                    return f"{column} != ''"
                return _substring(column, value, params)
            params.extend((name, value))
            return (
                "pb_header(coalesce((SELECT t.headers FROM blob_text AS t"
                " WHERE t.rowid = m.blob_id), (SELECT p.headers FROM text_pending AS p"
                " WHERE p.blob_id = m.blob_id)), ?, ?)"
            )
        case SearchText(value=value, body_only=body_only):
            if value == "":
                return "1"
            folded = value.casefold()
            indexed = len(folded) >= 3 and len(value) >= 3
            if indexed:
                # The index (detail=none) narrows to rows holding every trigram of the
                # string, in any column and order; the check on the text decides. The
                # body is indexed casefolded (text_index.TEXT_VERSION), the headers as
                # written: rows with the trigrams of either form are candidates.
                query = _fts_trigrams(folded)
                if not body_only and folded != value.lower():
                    query = f"({query}) OR ({_fts_trigrams(value)})"
                params.append(query)
            # RFC 9051 §6.4.4: the body as a substring of casefolded text. The same
            # check on the pending texts (same column names), with its own parameters.
            check_params: list[object] = [folded]
            parts = ["instr(t.body_text, ?) > 0"]
            if not body_only:
                parts.append(_substring("t.headers", value, check_params))
            check = " OR ".join(parts)
            params.extend(check_params)
            if indexed:
                indexed_sql = (
                    "m.blob_id IN (SELECT t.rowid FROM blob_text AS t"
                    f" WHERE t.blob_text MATCH ? AND ({check}))"
                )
            else:
                indexed_sql = (
                    f"EXISTS (SELECT 1 FROM blob_text AS t WHERE t.rowid = m.blob_id AND ({check}))"
                )
            params.extend(check_params)
            # IN, not a correlated EXISTS: the few pending rows are checked once per
            # query, not probed once per message of the mailbox.
            return (
                f"({indexed_sql} OR m.blob_id IN (SELECT t.blob_id FROM text_pending AS t"
                f" WHERE {check}))"
            )
        case SearchDate(op=op, day=day, sent=sent):
            sql_op = _DATE_OPS[op]
            params.append(day.isoformat())
            column = f"coalesce(b.sent_day, {_INTERNAL_DAY})" if sent else _INTERNAL_DAY
            return f"{column} {sql_op} ?"
        case SearchSaveDate(op=op, day=day):
            params.append(day.isoformat())
            return f"{_SAVED_DAY} {_DATE_OPS[op]} ?"
        case SearchWithin(op=op, cutoff=cutoff) if cutoff is not None:
            # RFC 5032 §3: OLDER, internal date before now minus the interval; YOUNGER,
            # within the interval.
            params.append(cutoff)
            return "m.internaldate < ?" if op == "older" else "m.internaldate >= ?"
        case SearchSize(op=op, size=size):
            params.append(size)
            return "m.size > ?" if op == "larger" else "m.size < ?"
        case SearchModseq(modseq=modseq):
            params.append(modseq)
            return "m.modseq >= ?"
        case SearchEmailId(blob_id=blob_id):
            if blob_id is None:
                return "0"
            params.append(blob_id)
            return "m.blob_id = ?"
        case SearchThreadId(thread_id=thread_id):
            if thread_id is None:
                return "0"
            params.append(thread_id)
            # Through the (mailbox_id, thread_id) index (migration 0013); a plain
            # "m.thread_id = ?" left the planner walking the mailbox in UID order.
            return (
                "m.uid IN (SELECT t.uid FROM messages AS t"
                " WHERE t.mailbox_id = m.mailbox_id AND t.thread_id = ?)"
            )
        case SearchNot(key=inner):
            return f"NOT ({_clause(inner, params)})"
        case SearchOr(left=left, right=right):
            return f"(({_clause(left, params)}) OR ({_clause(right, params)}))"
        case SearchAnd(keys=keys):
            if not keys:
                return "1"
            return "(" + " AND ".join(f"({_clause(k, params)})" for k in keys) + ")"
    # SearchSequence and SearchWithin (its cutoff) are resolved by the session before the store sees
    # the key (see `model.search`).
    raise ValueError(f"search key not resolved for the store: {key!r}")


def _blob_join(where: str) -> str:
    """The join to ``blobs`` the condition needs: none when it reads no blob column (a
    search by flags, UIDs, dates, size or text reads message rows only); through a
    narrow covering index when it reads only a column that has one (sqlite_0017: SEARCH
    SUBJECT or FROM over a large mailbox reads a few times fewer pages than through the
    wide blob rows, and the planner would not pick the index by itself)."""
    used = frozenset(_BLOB_COLUMN.findall(where))
    if not used:
        return ""
    index = _COVERING_INDEXES.get(used)
    hint = f" INDEXED BY {index}" if index else ""
    return f" JOIN blobs AS b{hint} ON b.id = m.blob_id"


def build(mailbox_id: int, key: SearchKey) -> tuple[str, list[object]]:
    """One SELECT returning the matching UIDs of the mailbox, ascending."""
    params: list[object] = [mailbox_id]
    where = _clause(key, params)
    sql = (
        f"SELECT m.uid FROM messages AS m{_blob_join(where)}"
        f" WHERE m.mailbox_id = ? AND ({where}) ORDER BY m.uid"
    )
    return sql, params
