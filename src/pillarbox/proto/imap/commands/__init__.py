"""Events of the IMAP server core: one frozen dataclass per command, plus the values inside them.

This package owns the *vocabulary* shared by the parser (`pillarbox.proto.imap.parser`), the
connection (`pillarbox.proto.imap.connection`) and the server built on them: commands,
sequence sets, the SEARCH key AST, FETCH attributes, and the non-command events
(`ContinuationNeeded`, `AuthenticateResponse`, `Done`, `ConnectionClosed`, `NEED_DATA`).
It is plain data: no parsing, no I/O, no policy. It must not import anything outside the
standard library, `pillarbox.proto` and the leaf `pillarbox.model` (whose message sets and
search keys it re-exports).

Conventions (RFC 9051 §9 grammar, RFC 3501 where IMAP4rev1 differs):
- Every command carries `tag` (the client's tag, as sent).
- Mailbox names and LIST patterns are `str`, decoded from atom/quoted/literal as UTF-8, *not*
  otherwise changed: "inbox" stays "inbox", modified UTF-7 stays encoded. In IMAP4rev1 mode the
  server applies `pillarbox.proto.imap.mutf7.decode` itself.
- Keywords, flags, capability names and option atoms are `str`. Flags keep their case as sent
  (``\\Seen``); atoms the grammar treats case-insensitively (ENABLE names, LIST options, STATUS
  items, SELECT parameter names) are upper-cased.
- SEARCH string arguments are decoded by the parser per the SEARCH CHARSET (US-ASCII, and
  UTF-8 when none is named; any other charset is decoded as Latin-1, byte for byte, for
  the server to refuse with ``NO [BADCHARSET]``); header field names are lower-cased.
- Numbers are validated against their ABNF ranges (nz-number 1..2**32-1, mod-sequence 63 bits).

Compatibility: this module is the contract the IMAP server codes against. Changes are additive
only (new classes, new fields with defaults at the end).
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal, TypeAlias

# Message sets and search keys are shared with services and the store: one definition,
# in the leaf `pillarbox.model`, re-exported here as part of the command vocabulary.
from pillarbox.model.search import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
    SearchUids,
    SearchWithin,
    SeqRange,
    SequenceSet,
)

# ---------------------------------------------------------------------------------------------
# Non-command events
# ---------------------------------------------------------------------------------------------


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Sentinel.NEED_DATA
"""Returned by `ServerConnection.next_event()` when it needs more bytes (`receive_data`)."""

NeedData: TypeAlias = Literal[_Sentinel.NEED_DATA]


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """The client announced a synchronising literal ``{size}`` and waits for "+".

    The server must send a continuation request (``responses.continuation("Ready")``) and then
    keep calling `next_event()`: the core reads exactly `size` bytes next. (RFC 9051 §4.3,
    §7.5.) Literals that are refused (too big, wrong state) never produce this event: the
    core raises `RemoteProtocolError` with the tagged NO/BAD instead, which tells the client
    not to send the literal.
    """

    tag: str
    size: int


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    """One client line of an AUTHENTICATE exchange (RFC 9051 §6.2.2).

    Produced only after the server called `conn.auth_challenge(...)`. `data` is the
    base64-decoded response (``b""`` for an empty line); `cancelled` is True when the client
    sent "*", and the server must then answer ``tag BAD`` (RFC 9051 §6.2.2). `tag` is the tag
    of the AUTHENTICATE command.
    """

    tag: str
    data: bytes
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """The client ended IDLE with "DONE" (RFC 2177, RFC 9051 §6.3.13).

    Produced only after the server called `conn.idle_accepted()`. `tag` is the IDLE tag: the
    server now sends ``tag OK IDLE terminated``.
    """

    tag: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``) or the session reached LOGOUT.

    Bytes of an unfinished command at EOF are dropped: a command is only acted on when its
    final CRLF arrived.
    """


# ---------------------------------------------------------------------------------------------
# Values used inside commands
# ---------------------------------------------------------------------------------------------


ParamValue: TypeAlias = "str | tuple[ParamValue, ...]"
"""A generic extension parameter value: an atom/number/string, or a parenthesised list."""


@dataclass(frozen=True, slots=True)
class QResync:
    """The QRESYNC select parameter (RFC 7162 §3.2.5), decoded from the generic parameters.

    ``(QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]]))``.
    """

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


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

# ----- other values ------------------------------------------------------------------------


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


StoreMode: TypeAlias = Literal["replace", "add", "remove"]

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

# Immutable defaults shared by every command that has no message set / criteria yet.
_NO_MESSAGES: Final = SequenceSet(())
_NO_CRITERIA: Final = SearchAnd(())


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command event; `NAME` is the command word (for logs and replies)."""

    NAME: ClassVar[str] = ""
    tag: str


# ----- any state (RFC 9051 §6.1) -----


@dataclass(frozen=True, slots=True)
class Capability(Command):
    """CAPABILITY."""

    NAME: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    """NOOP: the server sends pending untagged updates."""

    NAME: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """LOGOUT: the server sends ``* BYE``, tagged OK, then calls `conn.logged_out()`."""

    NAME: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (RFC 2971): `parameters` is None for ``ID NIL``; values may be None (NIL)."""

    NAME: ClassVar[str] = "ID"
    parameters: tuple[tuple[str, str | None], ...] | None = None


# ----- not authenticated (RFC 9051 §6.2) -----


@dataclass(frozen=True, slots=True)
class StartTls(Command):
    """STARTTLS: answer OK, start TLS, then call `conn.start_tls()` (drops buffered plaintext)."""

    NAME: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 9051 §6.2.2, SASL-IR RFC 4959).

    `mechanism` is upper-cased. `initial_response` is the decoded SASL-IR (``b""`` for "="),
    None when absent. For each further challenge the server calls `conn.auth_challenge(...)`
    and gets the client's reply as an `AuthenticateResponse` event.
    """

    NAME: ClassVar[str] = "AUTHENTICATE"
    mechanism: str = ""
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login(Command):
    """LOGIN userid password (RFC 9051 §6.2.3); both decoded as UTF-8."""

    NAME: ClassVar[str] = "LOGIN"
    username: str = ""
    password: str = field(default="", repr=False)


# ----- authenticated (RFC 9051 §6.3) -----


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """ENABLE cap... (RFC 5161); names upper-cased. Afterwards the server calls
    `conn.enabled(...)` with the ones it did enable (UTF8=ACCEPT and IMAP4REV2 change parsing).
    """

    NAME: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...] = ()


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


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND mailbox message... (RFC 9051 §6.3.12, MULTIAPPEND RFC 3502, RFC 3516 ~{n})."""

    NAME: ClassVar[str] = "APPEND"
    mailbox: str = ""
    messages: tuple[AppendMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """IDLE (RFC 2177): the server calls `conn.idle_accepted()` (sends "+ idling"), then
    sends untagged updates until a `Done` event arrives.
    """

    NAME: ClassVar[str] = "IDLE"


# ----- selected (RFC 9051 §6.4) -----


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


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE."""

    NAME: ClassVar[str] = "EXPUNGE"


@dataclass(frozen=True, slots=True)
class UidExpunge(Command):
    """UID EXPUNGE uid-set (RFC 4315 UIDPLUS, RFC 9051 §6.4.9)."""

    NAME: ClassVar[str] = "UID EXPUNGE"
    sequence_set: SequenceSet = _NO_MESSAGES


@dataclass(frozen=True, slots=True)
class Search(Command):
    """SEARCH / UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182).

    `criteria` is always a `SearchAnd` of the top-level keys. `charset` is upper-cased, None
    when absent. `return_options` is None without a RETURN clause (answer ``* SEARCH`` in
    IMAP4rev1, ``* ESEARCH`` in IMAP4rev2), else the upper-cased options (MIN MAX ALL COUNT
    SAVE; ``()`` means ALL per RFC 4731 §3.1).
    """

    NAME: ClassVar[str] = "SEARCH"
    uid: bool = False
    charset: str | None = None
    criteria: SearchAnd = _NO_CRITERIA
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """FETCH / UID FETCH (RFC 9051 §6.4.5) with CONDSTORE/QRESYNC modifiers (RFC 7162).

    `items` in the order sent, macros expanded. With `uid`, the server must add UID to each
    response itself (RFC 9051 §6.4.9). `changed_since` and `vanished` come from
    ``(CHANGEDSINCE n [VANISHED])``.
    """

    NAME: ClassVar[str] = "FETCH"
    uid: bool = False
    sequence_set: SequenceSet = _NO_MESSAGES
    items: tuple[FetchItem, ...] = ()
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Command):
    """STORE / UID STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] (flags).

    RFC 9051 §6.4.6, RFC 7162 §3.1.3. `mode` is "replace" (FLAGS), "add" (+FLAGS) or
    "remove" (-FLAGS).
    """

    NAME: ClassVar[str] = "STORE"
    uid: bool = False
    sequence_set: SequenceSet = _NO_MESSAGES
    mode: StoreMode = "replace"
    silent: bool = False
    flags: tuple[str, ...] = ()
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """COPY / UID COPY set mailbox (RFC 9051 §6.4.7)."""

    NAME: ClassVar[str] = "COPY"
    uid: bool = False
    sequence_set: SequenceSet = _NO_MESSAGES
    mailbox: str = ""


@dataclass(frozen=True, slots=True)
class Move(Command):
    """MOVE / UID MOVE set mailbox (RFC 6851, RFC 9051 §6.4.8)."""

    NAME: ClassVar[str] = "MOVE"
    uid: bool = False
    sequence_set: SequenceSet = _NO_MESSAGES
    mailbox: str = ""


Event: TypeAlias = Command | ContinuationNeeded | AuthenticateResponse | Done | ConnectionClosed
"""Everything `ServerConnection.next_event()` returns besides `NEED_DATA`."""

ALL_COMMANDS: Final[tuple[type[Command], ...]] = (
    Capability,
    Noop,
    Logout,
    Id,
    StartTls,
    Authenticate,
    Login,
    Enable,
    Select,
    Examine,
    Create,
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    List,
    Lsub,
    Namespace,
    Status,
    Append,
    Idle,
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge,
    Search,
    Fetch,
    Store,
    Copy,
    Move,
)

__all__ = [
    "ALL_COMMANDS",
    "NEED_DATA",
    "SIMPLE_FETCH_ATTRIBUTES",
    "STATUS_ITEMS",
    "Append",
    "AppendMessage",
    "Authenticate",
    "AuthenticateResponse",
    "Capability",
    "Check",
    "Close",
    "Command",
    "ConnectionClosed",
    "ContinuationNeeded",
    "Copy",
    "Create",
    "Delete",
    "Done",
    "Enable",
    "Event",
    "Examine",
    "Expunge",
    "Fetch",
    "FetchAttribute",
    "FetchBinarySize",
    "FetchBody",
    "FetchItem",
    "Id",
    "Idle",
    "List",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "NeedData",
    "Noop",
    "ParamValue",
    "Partial",
    "QResync",
    "Rename",
    "Search",
    "SearchAll",
    "SearchAnd",
    "SearchDate",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchModseq",
    "SearchNot",
    "SearchOr",
    "SearchSequence",
    "SearchSize",
    "SearchText",
    "SearchUids",
    "SearchWithin",
    "SectionKind",
    "Select",
    "SeqRange",
    "SequenceSet",
    "StartTls",
    "Status",
    "Store",
    "StoreMode",
    "Subscribe",
    "UidExpunge",
    "Unselect",
    "Unsubscribe",
]
