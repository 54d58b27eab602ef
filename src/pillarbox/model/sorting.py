"""What SORT and THREAD read per message (RFC 5256): values stored at delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SortRow:
    """One message's sort data, from its row and its blob's precomputed columns.

    `subject` is the decoded Subject (RFC 5256 §2.1 step (1) done at delivery);
    `envelope` the stored ENVELOPE bytes (addresses, Message-ID, In-Reply-To);
    `sent_date` the Date: header, None when it was missing or unparsable.
    With `with_references`: `references` the msg-ids of References (space-separated),
    None for a message stored before they were kept — then `header_text` holds its
    decoded header block to take them from; otherwise `header_text` is "".
    """

    uid: int
    internaldate: datetime
    size: int
    sent_date: datetime | None
    subject: str
    envelope: bytes
    references: str | None = None
    header_text: str = ""


SORT_KEYS = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
"""RFC 5256 §3 sort keys, plus DISPLAYFROM and DISPLAYTO (RFC 5957)."""


@dataclass(frozen=True, slots=True)
class SortCriterion:
    """One sort-criterion (RFC 5256 §4): a key of `SORT_KEYS`, upper-case; `reverse`
    when preceded by REVERSE."""

    key: str
    reverse: bool = False
