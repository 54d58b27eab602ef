"""How both SQL backends store flags: system flags as bits, keywords as rows.

Owns the bit of each system flag in the ``flags`` column of ``messages`` (bit ``1 << i``
is ``model.SYSTEM_FLAGS[i]``; the search SQL, the stored rows and `migrate-store`'s
straight copy depend on it), the conversions between flag sets and (bits, keywords),
the one rule of what a STORE makes of a message's flags (`next_flags`), so that the
backends cannot disagree on it, and the SQL expression both use to spell the system
flags of many rows as text (`system_names_sql`, for `Store.fetch_flag_text`). Must not:
run SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pillarbox.model import SYSTEM_FLAGS, FlagMode, canonical_flag
from pillarbox.rules.flags import MAX_KEYWORDS_PER_MESSAGE
from pillarbox.store.errors import LimitExceeded

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


# The system-flag names of every bit pattern as `FlagText` spells them: sorted by
# lowercase name, separated by single spaces.
SYSTEM_NAMES: tuple[str, ...] = tuple(
    " ".join(sorted(flags, key=str.lower)) for flags in _SYSTEM_SETS
)


def system_names_sql(column: str, prefix: str = "") -> str:
    """An SQL expression (SQLite and PostgreSQL alike) of the system-flag names of the
    bitmask `column`, as `SYSTEM_NAMES` has them, each after `prefix` (a tab, say: one
    concatenation per row less, which is a third of SQLite's cost per row): one CASE
    over the 32 patterns, so the names of 100,000 rows are built in the database, not
    by Python per row. The names hold a backslash and no quote, which both dialects take
    as is in '...'; `prefix` must hold no quote either."""
    assert "'" not in prefix
    mask = len(SYSTEM_NAMES) - 1
    arms = " ".join(
        f"WHEN {bits} THEN '{prefix}{names}'" for bits, names in enumerate(SYSTEM_NAMES)
    )
    return f"(CASE {column} & {mask} {arms} END)"


def flag_set(bits: int, keywords: Iterable[str] = ()) -> frozenset[str]:
    base = _SYSTEM_SETS[bits & ((1 << len(SYSTEM_FLAGS)) - 1)]
    return base.union(keywords) if keywords else base


@dataclass(frozen=True, slots=True)
class NewFlags:
    """What a STORE changes on one message: its new bits and keywords (spellings kept),
    and the keyword spellings to insert and to delete."""

    bits: int
    keywords: list[str]
    added: list[str]
    removed: list[str]


def next_flags(
    mode: FlagMode,
    old_bits: int,
    old_keywords: Iterable[str],
    bits: int,
    spelled: Mapping[str, str],
) -> NewFlags | None:
    """The flags of a message after STORE `mode` of (`bits`, `spelled`: casefolded ->
    spelling), or None when nothing changes (RFC 9051 §6.4.6: no MODSEQ, no FETCH).
    A keyword already on the message keeps its spelling (RFC 9051 §2.3.2: keywords are
    case-insensitive). More than MAX_KEYWORDS_PER_MESSAGE keywords is LimitExceeded."""
    have = {k.lower(): k for k in old_keywords}
    if mode == FlagMode.ADD:
        new_bits = old_bits | bits
        new_kw = {**have, **{f: s for f, s in spelled.items() if f not in have}}
    elif mode == FlagMode.REMOVE:
        new_bits = old_bits & ~bits
        new_kw = {f: s for f, s in have.items() if f not in spelled}
    else:
        new_bits = bits
        new_kw = {f: have.get(f, s) for f, s in spelled.items()}
    if len(new_kw) > MAX_KEYWORDS_PER_MESSAGE:
        raise LimitExceeded(f"At most {MAX_KEYWORDS_PER_MESSAGE} keywords per message")
    added = [s for f, s in new_kw.items() if f not in have]
    removed = [s for f, s in have.items() if f not in new_kw]
    if new_bits == old_bits and not added and not removed:
        return None
    return NewFlags(new_bits, list(new_kw.values()), added, removed)
