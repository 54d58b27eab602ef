"""Mailboxes and their counters."""

from __future__ import annotations

from dataclasses import dataclass

# RFC 6154 §2: special-use attributes; a new account gets one mailbox of each, plus INBOX.
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


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str  # canonical (`rules.mailbox_names`); "INBOX" is always spelled so
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
    deleted_size: int = 0  # octets of the \Deleted messages (RFC 9208 §4.2 DELETED-STORAGE)
