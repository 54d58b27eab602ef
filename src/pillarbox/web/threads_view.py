"""The conversation view of a folder (``/folder?f=INBOX&view=threads``).

A conversation is a THREADID thread (RFC 8474 §5.2: `messages.thread_id`, decided at
delivery from Message-ID, References and In-Reply-To, the same link IMAP THREADID and
SEARCH THREADID report), so the webmail groups exactly as an IMAP client that asks for
THREADID does. The REFERENCES algorithm of THREAD (RFC 5256) would regroup the whole
folder at every request (every row read and threaded in Python: seconds on 100,000
messages); the stored thread id lets the store page over conversations in one query.
Each row shows the newest message (sender, subject, date), the number of messages in
this folder and whether any is unread; ``t=THREADID`` opens one conversation under its
row, oldest message first.

Must not: read every message of the folder into Python, or query once per row.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.model import Mailbox
from pillarbox.services import message_lists
from pillarbox.services.context import Services
from pillarbox.web.listing import PAGE_SIZE, MessageRow, message_row


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread_id: int
    newest: MessageRow
    messages: int
    unseen: int
    expanded: list[MessageRow]  # the conversation's messages when it is open, else []


@dataclass(frozen=True, slots=True)
class ThreadsPage:
    mailbox: Mailbox
    rows: list[ThreadRow]
    number: int
    more: bool  # older conversations follow (their count is not known: see the store)
    open_thread: int | None


async def page(
    services: Services, mailbox: Mailbox, number: int, open_thread: int | None
) -> ThreadsPage:
    """Page `number` of the folder's conversations, the most recently active first;
    `open_thread` (a THREADID) is listed with its messages when it is on the page."""
    number = max(1, number)
    found, more = await message_lists.threads(
        services.store, mailbox, PAGE_SIZE, (number - 1) * PAGE_SIZE
    )
    if not found and number > 1:
        return await page(services, mailbox, 1, open_thread)  # past the end: the first
    rows = []
    for summary, info in found:
        expanded: list[MessageRow] = []
        if summary.thread_id == open_thread:
            infos = await message_lists.thread_messages(services.store, mailbox, open_thread)
            expanded = [message_row(i) for i in infos]
        rows.append(
            ThreadRow(
                summary.thread_id, message_row(info), summary.messages, summary.unseen, expanded
            )
        )
    return ThreadsPage(mailbox, rows, number, more, open_thread)
