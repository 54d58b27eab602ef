"""Which flags a client may store on a message (RFC 9051 §2.3.2).

The system flags are stored in their canonical case; ``\\Recent`` (gone in IMAP4rev2,
RFC 3501 §2.3.2: "cannot be altered by the client") is dropped, not refused, as clients
still send it; any other backslash flag is not a flag we know and is refused. Keywords
(no backslash) are kept as the client spelled them.
"""

from __future__ import annotations

from collections.abc import Iterable

from pillarbox.model import SYSTEM_FLAGS, canonical_flag

_STORABLE_SYSTEM = frozenset(SYSTEM_FLAGS)


# Keywords are bounded so that one client cannot grow FLAGS/PERMANENTFLAGS responses and
# the keyword rows without limit (issue 16): per message, and distinct per mailbox (Cyrus
# allows 128 per mailbox; real clients use a handful).
MAX_KEYWORDS_PER_MESSAGE = 100
MAX_KEYWORDS_PER_MAILBOX = 1000


class BadFlag(ValueError):
    """A backslash flag that is not a system flag."""


class TooManyKeywords(ValueError):
    """More keywords than `MAX_KEYWORDS_PER_MESSAGE` (RFC 9051 §7.1 LIMIT)."""


def storable_flags(flags: Iterable[str]) -> frozenset[str]:
    """The flags to store for what a client sent (STORE, APPEND); BadFlag if unknown."""
    out: set[str] = set()
    for flag in flags:
        f = canonical_flag(flag)
        if f.startswith("\\"):
            if f.lower() == "\\recent":
                continue
            if f not in _STORABLE_SYSTEM:
                raise BadFlag("Unknown system flag")
        out.add(f)
    if sum(1 for f in out if not f.startswith("\\")) > MAX_KEYWORDS_PER_MESSAGE:
        raise TooManyKeywords(f"At most {MAX_KEYWORDS_PER_MESSAGE} keywords per message")
    return frozenset(out)
