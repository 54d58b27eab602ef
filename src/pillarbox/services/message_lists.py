"""Message lists as a list view pages through them (the webmail), without SELECT.

An IMAP session loads a mailbox's every UID once and keeps it; a web page is one
request, so loading 100,000 UIDs to show 50 would make every page cost the size of the
folder. These calls ask the store for one page instead (`Store.page_uids`,
`Store.thread_page`) and then for that page's precomputed rows (`Store.fetch`): two
store calls a page, whatever the folder's size or the page's depth. Search is the
store's SEARCH, the same query IMAP SEARCH runs, over the whole mailbox.

The mailbox is one the caller resolved within the signed-in account
(`AccountMailboxes.find`); nothing here takes an id from a client.

Must not: query once per message, or know any protocol's syntax.
"""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model import (
    Mailbox,
    MessageInfo,
    MessagePage,
    SearchKey,
    SearchThreadId,
    ThreadSummary,
)
from pillarbox.services.mailbox import call_store
from pillarbox.store.api import Store


async def page(
    store: Store,
    mailbox: Mailbox,
    limit: int,
    *,
    offset: int = 0,
    before: int | None = None,
    after: int | None = None,
) -> tuple[MessagePage, list[MessageInfo]]:
    """One page of the mailbox, newest first, with its rows (two store calls)."""
    found = await call_store(
        store.page_uids(mailbox.id, limit, offset=offset, before=before, after=after)
    )
    return found, await rows(store, mailbox, found.uids)


async def rows(store: Store, mailbox: Mailbox, uids: Sequence[int]) -> list[MessageInfo]:
    """The precomputed rows of `uids` in the order given (one store call); UIDs that
    are gone are left out."""
    if not uids:
        return []
    by_uid = {info.uid: info for info in await call_store(store.fetch(mailbox.id, uids))}
    return [by_uid[uid] for uid in uids if uid in by_uid]


async def threads(
    store: Store, mailbox: Mailbox, limit: int, offset: int = 0
) -> tuple[list[tuple[ThreadSummary, MessageInfo]], bool]:
    """One page of the mailbox's conversations (THREADID, RFC 8474 §5.2), the most
    recently active first, each with its newest message's row, and whether older
    conversations follow (two store calls)."""
    found, more = await call_store(store.thread_page(mailbox.id, limit, offset))
    newest = await rows(store, mailbox, [t.newest_uid for t in found])
    by_uid = {info.uid: info for info in newest}
    return [(t, by_uid[t.newest_uid]) for t in found if t.newest_uid in by_uid], more


async def thread_messages(store: Store, mailbox: Mailbox, thread_id: int) -> list[MessageInfo]:
    """The messages of one conversation in the mailbox, oldest first: SEARCH THREADID
    and their rows (two store calls)."""
    uids = await search(store, mailbox, SearchThreadId(thread_id))
    return await rows(store, mailbox, uids)


async def search(store: Store, mailbox: Mailbox, key: SearchKey) -> list[int]:
    """UIDs matching `key` in the whole mailbox, ascending: the store's one SEARCH
    query. `key` must hold no message sets to resolve (no `SearchSequence`)."""
    return await call_store(store.search(mailbox.id, key))
