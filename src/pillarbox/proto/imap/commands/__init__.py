"""Events of the IMAP server core: one frozen dataclass per command, plus the values inside them.

This package owns the *vocabulary* shared by the parser (`pillarbox.proto.imap.parser`), the
connection (`pillarbox.proto.imap.connection`) and the server built on them: commands,
sequence sets, the SEARCH key AST, FETCH attributes, and the non-command events
(`ContinuationNeeded`, `AuthenticateResponse`, `Done`, `ConnectionClosed`, `NEED_DATA`).
It is plain data: no parsing, no I/O, no policy. It must not import anything outside the
standard library, `pillarbox.proto` and the leaf `pillarbox.model` (whose message sets and
search keys it re-exports).

One module per command family, as Stalwart's imap-proto keeps one file per command, so a
new command or extension touches one small room: `base` (the `Command` base, non-command
events, values several families share), `session` (any-state, not-authenticated, ENABLE,
IDLE), `mailboxes` (SELECT ... STATUS, CHECK, CLOSE, UNSELECT), `messages` (APPEND, STORE,
COPY, MOVE, EXPUNGE), `fetch` (FETCH and its items), `search` (SEARCH). Callers import this
package (``from pillarbox.proto.imap import commands as c``), never the family modules: the
split is an inside matter and every name stays reachable here.

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

from typing import Final

# Message sets and search keys are shared with services and the store: one definition,
# in the leaf `pillarbox.model`, re-exported here as part of the command vocabulary.
from pillarbox.model.search import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchEmailId,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSaveDate,
    SearchSequence,
    SearchSize,
    SearchText,
    SearchThreadId,
    SearchUids,
    SearchWithin,
    SeqRange,
    SequenceSet,
)
from pillarbox.proto.imap.commands.base import (
    NEED_DATA,
    AuthenticateResponse,
    Command,
    ConnectionClosed,
    ContinuationNeeded,
    Done,
    Event,
    NeedData,
    ParamValue,
    QResync,
)
from pillarbox.proto.imap.commands.compress import Compress
from pillarbox.proto.imap.commands.context import CancelUpdate
from pillarbox.proto.imap.commands.fetch import (
    SIMPLE_FETCH_ATTRIBUTES,
    Fetch,
    FetchAttribute,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Partial,
    SectionKind,
)
from pillarbox.proto.imap.commands.mailboxes import (
    STATUS_ITEMS,
    Check,
    Close,
    Create,
    Delete,
    Examine,
    List,
    Lsub,
    Namespace,
    Rename,
    Select,
    Status,
    Subscribe,
    Unselect,
    Unsubscribe,
)
from pillarbox.proto.imap.commands.messages import (
    Append,
    AppendMessage,
    CatPart,
    CatText,
    CatUrl,
    Copy,
    Expunge,
    Move,
    Store,
    StoreMode,
    UidExpunge,
)
from pillarbox.proto.imap.commands.notify import Notify, NotifyEvent, NotifyGroup
from pillarbox.proto.imap.commands.quota import GetQuota, GetQuotaRoot, SetQuota
from pillarbox.proto.imap.commands.replace import Replace
from pillarbox.proto.imap.commands.search import ESEARCH_OPTIONS, PartialRange, Search
from pillarbox.proto.imap.commands.session import (
    Authenticate,
    Capability,
    Enable,
    Id,
    Idle,
    Login,
    Logout,
    Noop,
    StartTls,
)
from pillarbox.proto.imap.commands.sort import ESORT_OPTIONS, Sort, Thread
from pillarbox.proto.imap.commands.unauthenticate import Unauthenticate

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
    Replace,
    Compress,
    Sort,
    Thread,
    Unauthenticate,
    Notify,
    GetQuota,
    GetQuotaRoot,
    SetQuota,
    CancelUpdate,
)

__all__ = [
    "ALL_COMMANDS",
    "ESEARCH_OPTIONS",
    "ESORT_OPTIONS",
    "NEED_DATA",
    "SIMPLE_FETCH_ATTRIBUTES",
    "STATUS_ITEMS",
    "Append",
    "AppendMessage",
    "Authenticate",
    "AuthenticateResponse",
    "CancelUpdate",
    "Capability",
    "CatPart",
    "CatText",
    "CatUrl",
    "Check",
    "Close",
    "Command",
    "Compress",
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
    "GetQuota",
    "GetQuotaRoot",
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
    "Notify",
    "NotifyEvent",
    "NotifyGroup",
    "ParamValue",
    "Partial",
    "PartialRange",
    "QResync",
    "Rename",
    "Replace",
    "Search",
    "SearchAll",
    "SearchAnd",
    "SearchDate",
    "SearchEmailId",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchModseq",
    "SearchNot",
    "SearchOr",
    "SearchSaveDate",
    "SearchSequence",
    "SearchSize",
    "SearchText",
    "SearchThreadId",
    "SearchUids",
    "SearchWithin",
    "SectionKind",
    "Select",
    "SeqRange",
    "SequenceSet",
    "SetQuota",
    "Sort",
    "StartTls",
    "Status",
    "Store",
    "StoreMode",
    "Subscribe",
    "Thread",
    "UidExpunge",
    "Unauthenticate",
    "Unselect",
    "Unsubscribe",
]
