"""Plain values that cross layer boundaries: the leaf every other package may import.

Everything here is a frozen, slotted dataclass, an enum or a constant: the store returns
these, services and front-ends read them, the protocol parsers and `message` build some
of them, and nothing in them does I/O or imports anything outside the standard library.
One definition per concept (one set of search keys, one message-metadata type), so that
parser, services and store never copy one type into another field by field.

Flags travel as IMAP flag atoms (``"\\Seen"``, ``"$Forwarded"``); system flags are
always in their canonical case (see `SYSTEM_FLAGS`), keywords as the client first spelled
them.
"""

from __future__ import annotations

from pillarbox.model.accounts import (
    Account,
    Alias,
    Domain,
    PopOnRetrieve,
    PopScope,
    QuotaUsage,
)
from pillarbox.model.changes import (
    Change,
    FlagsChanged,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
)
from pillarbox.model.flags import SYSTEM_FLAGS, FlagMode, FlagRow, FlagText, canonical_flag
from pillarbox.model.listing import MessagePage, ThreadSummary
from pillarbox.model.mailboxes import (
    DEFAULT_MAILBOXES,
    HIERARCHY_SEPARATOR,
    Mailbox,
    MailboxStatus,
)
from pillarbox.model.messages import (
    AppendResult,
    CopyResult,
    MessageInfo,
    MessageMeta,
    StoreFlagsResult,
)
from pillarbox.model.queue import (
    DkimKey,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    RecipientOutcome,
    RecipientState,
)
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

__all__ = [
    "DEFAULT_MAILBOXES",
    "HIERARCHY_SEPARATOR",
    "SYSTEM_FLAGS",
    "Account",
    "Alias",
    "AppendResult",
    "Change",
    "CopyResult",
    "DkimKey",
    "Domain",
    "FlagMode",
    "FlagRow",
    "FlagText",
    "FlagsChanged",
    "Mailbox",
    "MailboxStatus",
    "MailboxesChanged",
    "MessageInfo",
    "MessageMeta",
    "MessagePage",
    "MessagesAdded",
    "MessagesExpunged",
    "PopOnRetrieve",
    "PopScope",
    "QueueOrigin",
    "QueuedMessage",
    "QueuedRecipient",
    "QuotaUsage",
    "RecipientOutcome",
    "RecipientState",
    "Resync",
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
    "SeqRange",
    "SequenceSet",
    "StoreFlagsResult",
    "ThreadSummary",
    "canonical_flag",
]
