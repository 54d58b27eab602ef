"""Plain values that cross the store boundary.

Everything here is a frozen, slotted dataclass or an enum: the store returns these,
services and front-ends read them, and nothing in them does I/O. Flags travel as
IMAP flag atoms (``"\\Seen"``, ``"$Forwarded"``); system flags are always in their
canonical case (see `SYSTEM_FLAGS`), keywords as the client first spelled them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# RFC 9051 §2.3.2: the system flags. `\Recent` is gone in IMAP4rev2 and never stored.
SYSTEM_FLAGS: tuple[str, ...] = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")

# RFC 6154 §2: special-use attributes; the store creates one mailbox of each for a new
# account, plus INBOX.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)

# Mailbox names are UTF-8 with "/" as the hierarchy separator, both inside the store and
# on the wire for IMAP4rev2 (modified UTF-7 conversion happens in the IMAP front-end).
HIERARCHY_SEPARATOR = "/"


def canonical_flag(flag: str) -> str:
    """Return a system flag in canonical case, any other flag unchanged."""
    lowered = flag.lower()
    for system in SYSTEM_FLAGS:
        if system.lower() == lowered:
            return system
    return flag


class PopOnRetrieve(StrEnum):
    """What a POP3 DELE + QUIT does to the server copy (account policy)."""

    KEEP = "keep"  # stays in INBOX, hidden from later POP3 sessions
    MARK_READ = "mark-read"  # stays, gets \Seen, hidden from POP3
    ARCHIVE = "archive"  # moved to the Archive mailbox
    DELETE = "delete"  # really expunged (the default, as RFC 1939 intends)


class PopScope(StrEnum):
    """Which INBOX messages a POP3 session sees."""

    ALL = "all"
    FROM_NOW = "from-now"  # only those that arrived after the policy was set


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str  # lower-case, IDNA (A-label) form


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str  # lower-case local@domain
    domain_id: int
    password_hash: str  # argon2id encoded hash, never a password
    quota_bytes: int = 0  # 0 means no quota
    pop_on_retrieve: PopOnRetrieve = PopOnRetrieve.DELETE
    pop_scope: PopScope = PopScope.ALL
    pop_min_uid: int = 0  # with FROM_NOW: INBOX uids below this are invisible to POP3


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # "local@domain" or "@domain" (catch-all)
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str  # UTF-8, "/"-separated; "INBOX" is always spelled so
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None = None  # "\\Sent", ... (RFC 6154)
    subscribed: bool = False


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """The counts STATUS and SELECT report (RFC 9051 §6.3.11)."""

    messages: int
    unseen: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What delivery computes once from the message so that reading never re-parses.

    `envelope`, `bodystructure` and `body` are ready-to-send IMAP bytes (RFC 9051 §7.5.2).
    `parts` is a JSON document of part byte offsets (see `message.parts`) used to serve
    BODY[section] from a byte range of the message file.
    """

    size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: str
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    message_id: str = ""
    sent_date: datetime | None = None  # the Date: header, for SENTBEFORE/SENTON/SENTSINCE
    headers: str = ""  # decoded, unfolded header block, for SEARCH HEADER
    body_text: str = ""  # decoded text of the text parts, for SEARCH BODY/TEXT (full-text)
    preview: str = ""  # first ~200 characters of text (RFC 8970)


@dataclass(frozen=True, slots=True)
class FlagRow:
    """One message's flags and MODSEQ, the unit of FLAGS fetches and change events."""

    uid: int
    flags: frozenset[str]
    modseq: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """A stored message with everything FETCH can answer without the message file."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts: str
    preview: str
    blob_id: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    uid: int
    modseq: int
    uidvalidity: int


@dataclass(frozen=True, slots=True)
class CopyResult:
    """UID map of a COPY or MOVE (RFC 4315 COPYUID), in source-UID order."""

    uidvalidity: int  # of the destination
    source_uids: tuple[int, ...]
    dest_uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class StoreFlagsResult:
    changed: tuple[FlagRow, ...]  # rows whose flags changed, with their new MODSEQ
    modified: tuple[int, ...] = ()  # uids refused by UNCHANGEDSINCE (RFC 7162 §3.1.3)


class FlagMode(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


# --- search (RFC 9051 §6.4.4), already translated from sequence numbers to UIDs ---------


@dataclass(frozen=True, slots=True)
class SearchAll:
    pass


@dataclass(frozen=True, slots=True)
class SearchUids:
    uids: tuple[tuple[int, int], ...]  # inclusive ranges


@dataclass(frozen=True, slots=True)
class SearchFlag:
    flag: str  # canonical system flag or keyword
    present: bool = True


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """HEADER field string, and FROM/TO/CC/BCC/SUBJECT (field lower-case)."""

    field: str
    value: str  # substring, case-insensitive; "" matches any message having the field


@dataclass(frozen=True, slots=True)
class SearchText:
    value: str
    body_only: bool = False  # BODY searches the text only, TEXT headers and text


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    op: str  # "before" | "on" | "since"
    day: str  # ISO date "YYYY-MM-DD"; comparisons ignore time and timezone
    sent: bool = False


@dataclass(frozen=True, slots=True)
class SearchSize:
    op: str  # "larger" | "smaller"
    size: int


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """MODSEQ n (RFC 7162 §3.1.5)."""

    modseq: int


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    keys: tuple[SearchKey, ...] = field(default_factory=tuple)


SearchKey = (
    SearchAll
    | SearchUids
    | SearchFlag
    | SearchHeader
    | SearchText
    | SearchDate
    | SearchSize
    | SearchModseq
    | SearchNot
    | SearchOr
    | SearchAnd
)


# --- change bus --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagesAdded:
    account_id: int
    mailbox_id: int
    rows: tuple[FlagRow, ...]  # new uids with their flags and MODSEQ


@dataclass(frozen=True, slots=True)
class FlagsChanged:
    account_id: int
    mailbox_id: int
    rows: tuple[FlagRow, ...]


@dataclass(frozen=True, slots=True)
class MessagesExpunged:
    account_id: int
    mailbox_id: int
    uids: tuple[int, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class MailboxesChanged:
    """A mailbox of the account was created, deleted, renamed or (un)subscribed."""

    account_id: int


@dataclass(frozen=True, slots=True)
class Resync:
    """The subscriber fell behind and lost events: reload state from the store."""

    account_id: int


Change = MessagesAdded | FlagsChanged | MessagesExpunged | MailboxesChanged | Resync


# --- outbound queue ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    address: str
    notify: str | None = None  # RFC 3461 §4.1 NOTIFY, as given ("SUCCESS,DELAY")
    orcpt: str | None = None  # RFC 3461 §4.2 ORCPT, as given ("rfc822;a@b")


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    sender: str  # envelope sender, "" for the null reverse-path
    recipients: tuple[QueuedRecipient, ...]
    blob_id: int
    created_at: datetime
    next_attempt: datetime
    attempts: int = 0
    dsn_envid: str | None = None
    dsn_ret: str | None = None
    last_error: str = ""
