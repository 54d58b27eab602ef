"""Pages of a message list, as a list view asks for them without loading the mailbox.

A webmail folder page needs the mailbox's counts and the UIDs of one page, not every
UID as SELECT does: `MessagePage` is that. `ThreadSummary` is one conversation
(THREADID, RFC 8474 §5.2) of a mailbox as a conversation list shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.model.mailboxes import MailboxStatus


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a mailbox, newest first: `uids` descending; `newer` is how many
    messages have a higher UID than the page's first (its position, for "page N")."""

    status: MailboxStatus
    uids: tuple[int, ...]
    newer: int


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One conversation of a mailbox: its THREADID's thread, its newest message's UID
    (what a list shows and orders by) and its counts within the mailbox."""

    thread_id: int
    newest_uid: int
    messages: int
    unseen: int
