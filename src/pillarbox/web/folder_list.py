"""The account's folders as the webmail shows them: the sidebar and the folder choices.

The sidebar shows *every* folder, subscribed or not. Subscription (RFC 9051 §6.3.7) is
honoured unevenly: Thunderbird and Apple Mail subscribe what they create, many phone
clients and IMAP CREATE without SUBSCRIBE do not, and a filter may file mail into a
folder nobody subscribed. A sidebar of subscribed folders only would hide that mail
with no hint it exists. So subscription is shown (an unsubscribed folder is dimmed and
says so) and set on the manage page, for the IMAP clients that list subscribed folders
only; the webmail itself never hides a folder.

Folders are ordered as a person looks for them: INBOX, then the special-use folders
(RFC 6154: Drafts, Sent, Archive, Junk, Trash), then the rest by name, each folder's
sub-folders right under it and indented by level (``/`` is the hierarchy separator).
Each folder has a role: its RFC 6154 special use (INBOX is "\\Inbox"), which picks its
icon and the icon's text alternative. Unread counts are one STATUS per shown folder.

Must not: take a mailbox id from the browser, or query per message.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.model import HIERARCHY_SEPARATOR, Mailbox
from pillarbox.services.mailbox import AccountMailboxes

# RFC 6154 §2 special uses (and INBOX), in the order a person looks for them, with the
# icon each shows and the icon's text alternative.
ROLES: dict[str, tuple[int, str, str]] = {
    "\\Inbox": (0, "inbox", "Inbox"),
    "\\Drafts": (1, "drafts", "Drafts folder"),
    "\\Sent": (2, "sent", "Sent folder"),
    "\\Archive": (3, "archive", "Archive folder"),
    "\\Junk": (4, "junk", "Junk folder"),
    "\\Trash": (5, "trash", "Trash folder"),
    "\\All": (6, "all", "All messages"),
    "\\Flagged": (7, "flagged", "Flagged messages"),
}
OTHER = (9, "folder", "Folder")


@dataclass(frozen=True, slots=True)
class Folder:
    name: str  # canonical, the one forms and URLs carry
    label: str  # the last level when its parent is listed too, else the whole name
    depth: int  # levels below a listed parent, for indentation
    special_use: str | None  # RFC 6154, "\\Inbox" for INBOX
    icon: str  # key of the icon (folder_icons.html)
    role_text: str  # the icon's text alternative
    subscribed: bool
    messages: int
    unseen: int


def role(mailbox: Mailbox) -> str | None:
    return "\\Inbox" if mailbox.name == "INBOX" else mailbox.special_use


def _root(name: str) -> str:
    return name.split(HIERARCHY_SEPARATOR, 1)[0]


def ordered(mailboxes: list[Mailbox]) -> list[Mailbox]:
    """INBOX and special-use folders first, others by name; children right after their
    parent (a child of a special-use folder stays with it)."""
    by_name = {m.name: m for m in mailboxes}

    def key(mailbox: Mailbox) -> tuple[int, tuple[str, ...]]:
        use = role(mailbox)
        if use is None:
            root = by_name.get(_root(mailbox.name))
            use = role(root) if root is not None else None
        rank = ROLES.get(use or "", OTHER)[0]
        return rank, tuple(p.casefold() for p in mailbox.name.split(HIERARCHY_SEPARATOR))

    return sorted(mailboxes, key=key)


def _placed(name: str, names: set[str]) -> tuple[str, int]:
    """Label and depth: levels are counted from the nearest listed ancestor, so a
    folder whose parent is not shown keeps its full name and no indent."""
    parts = name.split(HIERARCHY_SEPARATOR)
    depth = 0
    for i in range(1, len(parts)):
        if HIERARCHY_SEPARATOR.join(parts[:i]) in names:
            depth += 1
    if depth and HIERARCHY_SEPARATOR.join(parts[:-1]) in names:
        return parts[-1], depth
    return name, depth


async def folder_rows(
    mailboxes: AccountMailboxes,
    listed: list[Mailbox],
    shown: tuple[int, int, int] | None = None,
) -> list[Folder]:
    """`shown`: (mailbox id, messages, unseen) of a folder whose counts the caller has
    just read with its page; not counted again (that part of a page's cost grows with
    the folder)."""
    names = {m.name for m in listed}
    rows = []
    for mailbox in ordered(listed):
        use = role(mailbox)
        _rank, icon, text = ROLES.get(use or "", OTHER)
        label, depth = _placed(mailbox.name, names)
        if shown is not None and shown[0] == mailbox.id:
            messages, unseen = shown[1], shown[2]
        else:
            status = await mailboxes.status(mailbox)
            messages, unseen = status.messages, status.unseen
        subscribed = mailbox.subscribed or mailbox.name == "INBOX"
        rows.append(
            Folder(mailbox.name, label, depth, use, icon, text, subscribed, messages, unseen)
        )
    return rows


async def sidebar(
    mailboxes: AccountMailboxes, shown: tuple[int, int, int] | None = None
) -> list[Folder]:
    """Every folder, in order, with counts (one list call, one STATUS per folder but
    `shown`'s: see `folder_rows`)."""
    return await folder_rows(mailboxes, await mailboxes.list_all(), shown)
