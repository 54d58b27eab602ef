"""Message-IDs in References, In-Reply-To and Message-ID fields (RFC 5322 §3.6.4), as
THREAD=REFERENCES reads them (RFC 5256 §3).

Lenient on purpose: a field is scanned for ``<left@right>`` tokens and anything else
(comments, phrases some clients put in In-Reply-To, stray text) is skipped, so a
malformed field yields the valid IDs it holds rather than none. IDs are kept as written,
angle brackets included, and compared byte for byte.

Must not: import anything outside the standard library.
"""

from __future__ import annotations

import re
from typing import Final

_MSG_ID: Final = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")


def message_ids(value: str) -> list[str]:
    """The valid msg-ids in a field value, in order (duplicates kept)."""
    return _MSG_ID.findall(value)


def references_field(header_text: str) -> str:
    """The value of the first References field in a decoded header block ("Name: value"
    per line, as stored for SEARCH HEADER); "" if there is none."""
    for line in header_text.split("\n"):
        if line[:11].lower() == "references:":
            return line[11:]
    return ""
