"""FETCH and the items it asks for: the hot read path, so its vocabulary stands alone.

FETCH / UID FETCH (RFC 9051 §6.4.5, RFC 3501 §6.4.5 for the IMAP4rev1 items), BINARY
sections (RFC 3516), MODSEQ and the CHANGEDSINCE/VANISHED modifiers (RFC 7162 §3.1.4,
§3.2.6), EMAILID/THREADID (RFC 8474) and SAVEDATE (RFC 8514). The items are what the
client asked for, macros expanded; what each costs to answer is the server's concern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final, Literal, TypeAlias

from pillarbox.model.search import SequenceSet
from pillarbox.proto.imap.commands.base import NO_MESSAGES, Command

# ----- FETCH attributes (RFC 9051 §6.4.5, RFC 3501 §6.4.5, RFC 3516, RFC 7162) --------------

SIMPLE_FETCH_ATTRIBUTES: Final = frozenset(
    {
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",  # non-extensible BODYSTRUCTURE (no section)
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",  # RFC 7162
        "RFC822",  # = BODY[] (sets \\Seen), answered as "RFC822"
        "RFC822.HEADER",  # = BODY.PEEK[HEADER], answered as "RFC822.HEADER"
        "RFC822.TEXT",  # = BODY[TEXT] (sets \\Seen), answered as "RFC822.TEXT"
        "EMAILID",  # RFC 8474
        "THREADID",  # RFC 8474
        "SAVEDATE",  # RFC 8514
        "PREVIEW",  # RFC 8970 (a "(LAZY)" modifier is parsed and needs nothing here)
    }
)


@dataclass(frozen=True, slots=True)
class FetchAttribute:
    """A FETCH item without a section: one of `SIMPLE_FETCH_ATTRIBUTES` (upper-case).

    The macros ALL, FAST and FULL are expanded by the parser into these.
    """

    name: str


SectionKind: TypeAlias = Literal["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


@dataclass(frozen=True, slots=True)
class Partial:
    """``<origin.length>`` of BODY[...]/BINARY[...]: the response names only ``<origin>``."""

    origin: int
    length: int


@dataclass(frozen=True, slots=True)
class FetchBody:
    """BODY[section]<partial>, BODY.PEEK[...], BINARY[part]<partial>, BINARY.PEEK[part].

    `part` is the part path (``BODY[1.2.MIME]`` → ``(1, 2)``, ``BODY[]`` → ``()``); `kind` the
    section text after it ("" for the whole part); `fields` the header names of
    HEADER.FIELDS[.NOT] as sent (case-insensitive per RFC 5322); `peek` means \\Seen is not set;
    `binary` marks BINARY (RFC 3516: only a part path, no `kind`).
    """

    part: tuple[int, ...] = ()
    kind: SectionKind = ""
    fields: tuple[str, ...] = ()
    partial: Partial | None = None
    peek: bool = False
    binary: bool = False


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """BINARY.SIZE[part] (RFC 3516): size of the decoded part."""

    part: tuple[int, ...] = ()


FetchItem: TypeAlias = FetchAttribute | FetchBody | FetchBinarySize


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH (RFC 9051 §6.4.5) with CONDSTORE/QRESYNC modifiers (RFC 7162).

    `items` in the order sent, macros expanded. With `uid`, the server must add UID to each
    response itself (RFC 9051 §6.4.9). `changed_since` and `vanished` come from
    ``(CHANGEDSINCE n [VANISHED])``.
    """

    NAME: ClassVar[str] = "FETCH"
    uid: bool = False
    sequence_set: SequenceSet = NO_MESSAGES
    items: tuple[FetchItem, ...] = ()
    changed_since: int | None = None
    vanished: bool = False
