"""What this process knows of each mailbox's \\Recent watermark, so that a delivery to a
mailbox that ten thousand IMAP4rev1 sessions have selected costs one claim, not one
write transaction per session.

RFC 3501 §2.3.2: a message is \\Recent for exactly one session. The store keeps the
highest UID already taken per mailbox (`Store.claim_recent`), and only ever raises it.
A lower bound of it known here is therefore safe: when the bound already reaches the
top of a session's view, a claim would return a watermark at or above that top and add
nothing to the session's recent set, so the store call can be skipped. The bound is
raised when a read-write claim *starts*: the sessions woken by the same delivery then
see that another session is taking the new messages (it is the one they are recent
for) instead of queueing a transaction each. Kept per store object (tests run several
servers in one process) and per (mailbox id, UIDVALIDITY), so a recreated mailbox that
reuses an id starts from nothing.
"""

from __future__ import annotations

import weakref

from pillarbox.store.api import Store

_floors: weakref.WeakKeyDictionary[Store, dict[tuple[int, int], int]] = weakref.WeakKeyDictionary()


def known(store: Store, mailbox_id: int, uidvalidity: int) -> int:
    """A UID at or below the store's watermark for the mailbox (0 when nothing is known)."""
    floors = _floors.get(store)
    if floors is None:
        return 0
    return floors.get((mailbox_id, uidvalidity), 0)


def raise_to(store: Store, mailbox_id: int, uidvalidity: int, uid: int) -> None:
    """Record that the store's watermark is (or is being raised to) at least `uid`."""
    floors = _floors.get(store)
    if floors is None:
        floors = _floors[store] = {}
    key = (mailbox_id, uidvalidity)
    if floors.get(key, 0) < uid:
        floors[key] = uid
