"""Commands that act on mailboxes as a whole: open, make, name, list and leave them.

SELECT/EXAMINE (RFC 9051 §6.3.2-3, select-params RFC 4466 §2.2, CONDSTORE/QRESYNC RFC 7162),
CREATE (RFC 9051 §6.3.4, USE RFC 6154 §5), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE
(RFC 9051 §6.3.5-8), LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819),
LSUB (RFC 3501 §6.3.9), NAMESPACE (RFC 2342), STATUS (RFC 9051 §6.3.11), and the
selected-state commands that only leave or check the mailbox: CHECK (RFC 3501 §6.4.1),
CLOSE (RFC 9051 §6.4.1), UNSELECT (RFC 3691). Mailbox names stay as sent (see the package
docstring); their encoding and validity are the server's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from pillarbox.proto.imap.commands.base import Command, ParamValue, QResync


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT mailbox [(params)] (RFC 9051 §6.3.2).

    `parameters`: every select-param as (UPPER-CASE name, value or None), generic.
    `condstore` and `qresync` are the RFC 7162 ones decoded from them for convenience.
    """

    NAME: ClassVar[str] = "SELECT"
    mailbox: str = ""
    parameters: tuple[tuple[str, ParamValue | None], ...] = ()
    condstore: bool = False
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Examine(Command):
    """EXAMINE: SELECT read-only (RFC 9051 §6.3.3); same fields as `Select`."""

    NAME: ClassVar[str] = "EXAMINE"
    mailbox: str = ""
    parameters: tuple[tuple[str, ParamValue | None], ...] = ()
    condstore: bool = False
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE mailbox [(USE (\\Drafts ...))] (RFC 9051 §6.3.4, RFC 6154 §5).

    `special_use` holds the USE flags; `parameters` every create-param generically.
    """

    NAME: ClassVar[str] = "CREATE"
    mailbox: str = ""
    special_use: tuple[str, ...] = ()
    parameters: tuple[tuple[str, ParamValue | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    """DELETE mailbox."""

    NAME: ClassVar[str] = "DELETE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Rename(Command):
    """RENAME existing new."""

    NAME: ClassVar[str] = "RENAME"
    mailbox: str = ""
    new_name: str = ""


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """SUBSCRIBE mailbox."""

    NAME: ClassVar[str] = "SUBSCRIBE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    """UNSUBSCRIBE mailbox."""

    NAME: ClassVar[str] = "UNSUBSCRIBE"
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST [(selection-options)] reference (pattern | (patterns)) [RETURN (options)].

    RFC 9051 §6.3.9 / RFC 5258 (LIST-EXTENDED), RFC 6154 (SPECIAL-USE), RFC 5819 (STATUS).
    `selection_options` and `return_options` are upper-cased atoms (SUBSCRIBED, REMOTE,
    RECURSIVEMATCH, SPECIAL-USE / SUBSCRIBED, CHILDREN, SPECIAL-USE, ...); the STATUS return
    option is not in `return_options` but in `status_items` (None when not asked).
    `extended` is True when any LIST-EXTENDED syntax was used (RFC 5258 §3: then CHILDINFO
    etc. may be sent).
    """

    NAME: ClassVar[str] = "LIST"
    reference: str = ""
    patterns: tuple[str, ...] = ()
    selection_options: tuple[str, ...] = ()
    return_options: tuple[str, ...] = ()
    status_items: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    """LSUB reference pattern (RFC 3501 §6.3.9; gone in IMAP4rev2 but still accepted)."""

    NAME: ClassVar[str] = "LSUB"
    reference: str = ""
    pattern: str = ""


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    """NAMESPACE (RFC 2342, RFC 9051 §6.3.10)."""

    NAME: ClassVar[str] = "NAMESPACE"


STATUS_ITEMS: Final = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "DELETED-STORAGE",  # RFC 9208 §4.2
        "SIZE",
        "RECENT",  # IMAP4rev1 only
        "HIGHESTMODSEQ",  # RFC 7162
        "APPENDLIMIT",  # RFC 7889
        "MAILBOXID",  # RFC 8474
    }
)


@dataclass(frozen=True, slots=True)
class Status(Command):
    """STATUS mailbox (items) (RFC 9051 §6.3.11); items upper-cased, each in STATUS_ITEMS."""

    NAME: ClassVar[str] = "STATUS"
    mailbox: str = ""
    items: tuple[str, ...] = ()


# ----- selected (RFC 9051 §6.4): leaving or checking the mailbox -----


@dataclass(frozen=True, slots=True)
class Check(Command):
    """CHECK (RFC 3501 §6.4.1; IMAP4rev1 only): behave like NOOP."""

    NAME: ClassVar[str] = "CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    """CLOSE: expunge silently (unless read-only) and leave the selected state."""

    NAME: ClassVar[str] = "CLOSE"


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """UNSELECT (RFC 3691): leave the selected state without expunging."""

    NAME: ClassVar[str] = "UNSELECT"
