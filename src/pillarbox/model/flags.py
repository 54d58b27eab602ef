"""Message flags (RFC 9051 §2.3.2): the system flags, flag modes, a row of flags."""

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
