"""What the folder and message lists show, computed from the rows stored at delivery.

A folder row is a mailbox with its STATUS counts; a message row is read from the
precomputed columns (`MessageInfo`: the ENVELOPE bytes, flags, arrival time, size and
the preview `message.text.preview` made at delivery, the one IMAP PREVIEW returns), so
a page of the list never opens a message file. A page costs two store calls: the UID
list with the mailbox's counts (`SelectedMailbox.open`, as SELECT) and the rows of the
page's UIDs (`SelectedMailbox.fetch` without sections, as FETCH ENVELOPE FLAGS).

Must not: parse message bodies or query the store once per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope_fields import EnvelopeAddress, read_envelope
from pillarbox.model import Mailbox, MessageInfo
from pillarbox.services.context import Services
from pillarbox.services.mailbox import AccountMailboxes
from pillarbox.services.selected import SelectedMailbox

PAGE_SIZE = 50

# RFC 6154 special uses, in the order a person looks for them.
SPECIAL_ORDER = {"\\Inbox": 0, "\\Drafts": 1, "\\Sent": 2, "\\Archive": 3, "\\Junk": 4}
SPECIAL_ORDER |= {"\\Trash": 5}


@dataclass(frozen=True, slots=True)
class FolderRow:
    name: str
    special_use: str | None
    messages: int
    unseen: int


@dataclass(frozen=True, slots=True)
class MessageRow:
    uid: int
    sender: str  # display name, else address
    sender_address: str
    subject: str
    arrived: datetime
    preview: str
    seen: bool
    flagged: bool
    answered: bool
    size: int


@dataclass(frozen=True, slots=True)
class Page:
    mailbox: Mailbox
    rows: list[MessageRow]
    number: int
    pages: int
    messages: int
    unseen: int


def _sort_key(mailbox: Mailbox) -> tuple[int, str]:
    use = "\\Inbox" if mailbox.name == "INBOX" else mailbox.special_use
    return (SPECIAL_ORDER.get(use or "", 9), mailbox.name.casefold())


async def folders(mailboxes: AccountMailboxes) -> list[FolderRow]:
    """Every mailbox of the account, INBOX and special-use ones first, with counts (one
    STATUS call per mailbox: an account has a handful)."""
    rows = []
    for mailbox in sorted(await mailboxes.list_all(), key=_sort_key):
        status = await mailboxes.status(mailbox)
        rows.append(FolderRow(mailbox.name, mailbox.special_use, status.messages, status.unseen))
    return rows


def address_text(address: EnvelopeAddress) -> str:
    local = (address.mailbox or b"").decode("utf-8", "replace")
    host = (address.host or b"").decode("utf-8", "replace")
    return f"{local}@{host}" if host else local


def message_row(info: MessageInfo) -> MessageRow:
    envelope = read_envelope(info.envelope)
    sender, sender_address = "", ""
    if envelope.from_:
        first = envelope.from_[0]
        sender_address = address_text(first)
        sender = decode_header_value(first.name) if first.name else sender_address
    subject = decode_header_value(envelope.subject) if envelope.subject else ""
    return MessageRow(
        uid=info.uid,
        sender=sender,
        sender_address=sender_address,
        subject=subject,
        arrived=info.internaldate,
        preview=info.preview,
        seen="\\Seen" in info.flags,
        flagged="\\Flagged" in info.flags,
        answered="\\Answered" in info.flags,
        size=info.size,
    )


async def page(services: Services, mailbox: Mailbox, number: int) -> Page:
    """Page `number` (1 is the newest messages) of the mailbox, newest first."""
    selected = SelectedMailbox(services.store, mailbox, read_only=True)
    status, _first_unseen = await selected.open()
    uids = selected.view.uids
    pages = max(1, -(-len(uids) // PAGE_SIZE))
    number = min(max(1, number), pages)
    end = len(uids) - (number - 1) * PAGE_SIZE
    wanted = list(uids[max(0, end - PAGE_SIZE) : end])
    rows: list[MessageRow] = []
    async for batch in selected.fetch(wanted, [], set_seen=False):
        rows.extend(message_row(m.info) for m in batch)
    rows.reverse()
    return Page(selected.mailbox, rows, number, pages, status.messages, status.unseen)
