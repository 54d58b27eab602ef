"""Commands that add, change, copy or remove messages (everything but reading them).

APPEND (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502, literal8 RFC 3516, UTF8 RFC 6855 §4),
STORE (RFC 9051 §6.4.6, UNCHANGEDSINCE RFC 7162 §3.1.3), COPY (RFC 9051 §6.4.7),
MOVE (RFC 6851), EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315). Message sets are
kept as sent (sequence numbers or UIDs, per `uid`): resolving them needs the session's
mailbox view, which lives in `services`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

from pillarbox.model.search import SequenceSet
from pillarbox.proto.imap.commands.base import NO_MESSAGES, Command


@dataclass(frozen=True, slots=True)
class CatText:
    """A CATENATE TEXT part (RFC 4469 §5): literal bytes, kept as sent (NUL included,
    so that the server can refuse it with NO rather than BAD)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CatUrl:
    """A CATENATE URL part (RFC 4469 §5): an IMAP URL (RFC 5092), not yet interpreted."""

    url: str


CatPart: TypeAlias = CatText | CatUrl


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND (several with MULTIAPPEND, RFC 3502).

    `binary` is True for a ``~{n}`` literal8 (RFC 3516) and for the RFC 6855 ``UTF8 (...)``
    form (which also sets `utf8`). `internal_date` is timezone-aware, None when absent.
    """

    flags: tuple[str, ...]
    internal_date: datetime.datetime | None
    data: bytes
    binary: bool = False
    utf8: bool = False
    catenate: tuple[CatPart, ...] | None = None  # RFC 4469: the parts to join, not `data`


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND mailbox message... (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502, RFC 3516 ~{n})."""

    NAME: ClassVar[str] = "APPEND"
    mailbox: str = ""
    messages: tuple[AppendMessage, ...] = ()


StoreMode: TypeAlias = Literal["replace", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] (flags).

    RFC 9051 §6.4.6, RFC 7162 §3.1.3. `mode` is "replace" (FLAGS), "add" (+FLAGS) or
    "remove" (-FLAGS).
    """

    NAME: ClassVar[str] = "STORE"
    uid: bool = False
    sequence_set: SequenceSet = NO_MESSAGES
    mode: StoreMode = "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """COPY / UID COPY set mailbox (RFC 9051 §6.4.7)."""

    NAME: ClassVar[str] = "COPY"
    uid: bool = False
    sequence_set: SequenceSet = NO_MESSAGES
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Move(Command):
    """MOVE / UID MOVE set mailbox (RFC 6851, RFC 9051 §6.4.8)."""

    NAME: ClassVar[str] = "MOVE"
    uid: bool = False
    sequence_set: SequenceSet = NO_MESSAGES
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE."""

    NAME: ClassVar[str] = "EXPUNGE"


@dataclass(frozen=True, slots=True)
class UidExpunge(Command):
    """UID EXPUNGE uid-set (RFC 4315 UIDPLUS, RFC 9051 §6.4.9)."""

    NAME: ClassVar[str] = "UID EXPUNGE"
    sequence_set: SequenceSet = NO_MESSAGES
