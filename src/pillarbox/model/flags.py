"""Message flags (RFC 9051 §2.3.2): the system flags, flag modes, a row of flags, the
flags of many messages as text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# RFC 9051 §2.3.2: the system flags. `\Recent` is gone in IMAP4rev2 and never stored.
SYSTEM_FLAGS: tuple[str, ...] = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


def canonical_flag(flag: str) -> str:
    """Return a system flag in canonical case, any other flag unchanged."""
    lowered = flag.lower()
    for system in SYSTEM_FLAGS:
        if system.lower() == lowered:
            return system
    return flag


class FlagMode(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class FlagRow:
    """One message's flags and MODSEQ, the unit of FLAGS fetches and change events."""

    uid: int
    flags: frozenset[str]
    modseq: int


@dataclass(frozen=True, slots=True)
class FlagText:
    """The flags of many messages as one text the store built in SQL (`Store.fetch_flag_text`),
    so that a FLAGS fetch of 100,000 messages creates no Python object per message.

    `text` holds one line per existing message, in ascending UID order, joined by
    ``"\n"`` (no trailing newline; empty when `count` is 0). A line is the UID, a tab,
    with `modseq` asked the MODSEQ and a tab, then the message's flag names separated by
    single spaces: the system flags first in canonical spelling, ordered by their
    lowercase names (``\\Answered \\Deleted \\Draft \\Flagged \\Seen``), then the
    keywords as first spelled, ordered ignoring ASCII case. Flag names never hold a tab,
    a space or a newline. `keywords`: every keyword that occurs in `text`."""

    count: int
    text: str
    keywords: frozenset[str] = frozenset()
