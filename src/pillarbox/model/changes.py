"""Change events: what the change bus carries from a commit to every interested session.

An event carries its data (UIDs, flags, MODSEQ), so a subscriber updates its view from the
event alone, without a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.model.flags import FlagRow


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
