"""PostgreSQL: the substring-search text of each blob (``blob_text``, plan §1).

Owns what a delivery writes for SEARCH: per blob one row with the decoded header block
as given (``headers``, for HEADER matches that must see the field names), and the header
block and body text casefolded in Python (``headers_cf``, ``body_cf``): IMAP SEARCH is
substring matching, case-insensitive as Python's `str.casefold` (RFC 9051 §6.4.4), so
folding here, once, gives the same results as the SQLite backend's `pb_contains`; the
pg_trgm indexes on the folded columns narrow, an exact LIKE/strpos decides
(`store.postgres.search`, another module's concern).

The text is exactly what SQLite's index takes (`sqlite.text_index` stores the meta's
texts as given): the limit is the parser's (`message.text.TEXT_CAP`, 1 Mi characters of
body text), applied once when the message is parsed, so both backends search the same
text. NUL, which the parser already drops, is dropped again because PostgreSQL text
cannot hold it. A text that is not valid Unicode (a lone surrogate) fails its own
delivery, as it does on SQLite.

Rows are written in the delivery's transaction, before the mailbox lock is taken
(`message_rows.prepare_blobs`), so the GIN insert costs no time under the hot lock; a
blob's row is written once (ON CONFLICT DO NOTHING: COPY and several recipients share
the blob and its text), and goes with its blob by ON DELETE CASCADE.

Must not: take a lock, or decide anything about matching.
"""

from __future__ import annotations

from collections.abc import Iterable

from pillarbox.model import MessageMeta
from pillarbox.store.postgres.core import Conn


def _clean(text: str) -> str:
    return text.replace("\x00", "") if "\x00" in text else text


def text_row(meta: MessageMeta) -> tuple[str, str, str]:
    """(headers, headers_cf, body_cf) of a message, as ``blob_text`` stores them."""
    headers = _clean(meta.headers)
    body = _clean(meta.body_text)
    return headers, headers.casefold(), body.casefold()


async def add_texts(conn: Conn, items: Iterable[tuple[int, MessageMeta]]) -> None:
    """Write the ``blob_text`` row of each distinct blob of `items` that has none yet,
    in one statement on the caller's transaction."""
    rows = {blob_id: text_row(meta) for blob_id, meta in items}
    if not rows:
        return
    ids = list(rows)
    await conn.execute(
        "INSERT INTO blob_text (blob_id, headers, headers_cf, body_cf)"
        " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
        " ON CONFLICT (blob_id) DO NOTHING",
        ids,
        [rows[i][0] for i in ids],
        [rows[i][1] for i in ids],
        [rows[i][2] for i in ids],
    )
