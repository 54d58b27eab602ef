"""What THREAD takes from a stored row (`sorting.thread_input`), RFC 5256 §3 step (1).

Pins: References msg-ids stored at delivery are used as they are; a row stored before
they were kept takes them from its decoded header block; with no References the first
valid In-Reply-To msg-id is the only reference; the Message-ID comes from the ENVELOPE;
the subject is reduced to its base and marked as a reply; the sent date falls back to
INTERNALDATE (RFC 5256 §2.2).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pillarbox.message.parse import parse
from pillarbox.model.sorting import SortRow
from pillarbox.services.sorting import thread_input

WHEN = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)


def row(data: bytes, references: str | None, header_text: str = "") -> SortRow:
    meta = parse(data)
    return SortRow(
        1, WHEN, meta.size, meta.sent_date, meta.subject, meta.envelope, references, header_text
    )


def test_stored_references_win() -> None:
    r = row(b"Message-ID: <m@x>\r\nIn-Reply-To: <p@x>\r\nSubject: Re: hi\r\n\r\n", "<a@x> <b@x>")
    t = thread_input(r, with_references=True)
    assert (t.message_id, t.references) == ("<m@x>", ("<a@x>", "<b@x>"))
    assert (t.subject, t.reply, t.sent) == ("HI", True, WHEN.timestamp())


def test_old_rows_read_the_header_text() -> None:
    r = row(b"Subject: x\r\n\r\n", None, "Subject: x\nReferences: junk <a@x> (c) <b@x>\n")
    assert thread_input(r, with_references=True).references == ("<a@x>", "<b@x>")


def test_in_reply_to_when_no_references() -> None:
    r = row(b"In-Reply-To: Bob's mail <p@x> <q@x>\r\nSubject: x\r\n\r\n", "")
    t = thread_input(r, with_references=True)
    assert (t.message_id, t.references) == (None, ("<p@x>",))
