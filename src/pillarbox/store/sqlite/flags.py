"""How the SQLite backend stores flags: system flags as bits, keywords as rows.

Owns the bit of each system flag in the ``flags`` column of ``messages`` (bit ``1 << i``
is ``model.SYSTEM_FLAGS[i]``; the search SQL and the stored rows depend on it), and the
conversions between flag sets and (bits, keywords). Must not: run SQL.
"""

from __future__ import annotations

from collections.abc import Iterable

from pillarbox.model import SYSTEM_FLAGS, canonical_flag

FLAG_BITS: dict[str, int] = {flag: 1 << i for i, flag in enumerate(SYSTEM_FLAGS)}
DELETED = FLAG_BITS["\\Deleted"]
SEEN = FLAG_BITS["\\Seen"]


def split_flags(flags: Iterable[str]) -> tuple[int, dict[str, str]]:
    """System flags as a bitmask, keywords as {casefolded: spelling}.

    Unknown backslash flags (such as the obsolete \\Recent) cannot be stored: dropped.
    """
    bits = 0
    keywords: dict[str, str] = {}
    for raw in flags:
        flag = canonical_flag(raw)
        bit = FLAG_BITS.get(flag)
        if bit is not None:
            bits |= bit
        elif flag and not flag.startswith("\\"):
            keywords.setdefault(flag.lower(), flag)
    return bits, keywords


# Every system-flag combination, built once: a 100,000-row FLAGS fetch then creates no
# sets for messages without keywords.
_SYSTEM_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(flag for flag, bit in FLAG_BITS.items() if bits & bit)
    for bits in range(1 << len(SYSTEM_FLAGS))
)


def flag_set(bits: int, keywords: Iterable[str] = ()) -> frozenset[str]:
    base = _SYSTEM_SETS[bits & ((1 << len(SYSTEM_FLAGS)) - 1)]
    return base.union(keywords) if keywords else base
