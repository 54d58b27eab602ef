"""How a new UIDVALIDITY is chosen (RFC 9051 §2.3.1.1).

A (mailbox name, UIDVALIDITY, UID) triple must never name two different messages, even
across a delete and re-create or a rename of the name, or a restore of an older backup.
So every UIDVALIDITY a store hands out — for a new mailbox, a renamed one, an account's
default mailboxes — comes from one store-wide counter that only grows, and never from
below the current time: after a restore of an older database the counter still moves
past everything the lost data had handed out (as long as the clock does).
"""

from __future__ import annotations

MAX_UIDVALIDITY = 0xFFFFFFFF  # RFC 9051 §9: nz-number, 32 bits


def next_uidvalidity(last: int, now: float) -> int:
    """The UIDVALIDITY after `last` (the store's counter) at time `now` (epoch seconds)."""
    value = max(last + 1, int(now))
    if value > MAX_UIDVALIDITY:  # in the year 2106 at the earliest
        raise OverflowError("UIDVALIDITY space exhausted")
    return value
