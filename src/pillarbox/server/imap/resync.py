"""Quick resynchronisation (RFC 7162 QRESYNC): what a SELECT ... (QRESYNC ...) and a
UID FETCH ... (CHANGEDSINCE m VANISHED) tell a client that comes back.

Both answer from one store call (`SelectedMailbox.changes_since`: the rows whose MODSEQ
is above the client's and the UIDs expunged after it, read from the ``expunged`` table),
never from a query per message, so a client offline for a week resynchronises a 50,000
message folder by receiving only what changed.

The ``expunged`` table keeps every expunge of a mailbox for as long as the mailbox lives
(its MODSEQ never goes back: RFC 7162 §3.2.5.2), so the server always knows exactly which
UIDs vanished after any MODSEQ; the seq-match data a client may add to help a server
that forgot (RFC 7162 §3.2.5.2) is therefore accepted and not needed.

Must not: at SELECT, report a UID the fresh view still holds as vanished (it went after
the snapshot and a plain VANISHED follows, RFC 7162 §3.2.10), or a change of a message
the view has not announced yet (its EXISTS brings it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import responses
from pillarbox.server.imap.session import Session
from pillarbox.services.selected import SelectedMailbox

_ANY_UID = 0xFFFFFFFF  # "*" in a set of UIDs the client knew: no upper bound


class UidSet:
    """A client's UID set (known-uids, a UID FETCH set) as sorted, merged ranges, for
    membership tests without expanding it; "*" has no upper bound."""

    def __init__(self, sequence_set: c.SequenceSet, saved: Iterable[int] = ()) -> None:
        """`saved` is what "$" stands for (RFC 5182), when the set is "$"."""
        spans = [(u, u) for u in saved] if sequence_set.saved else []
        for r in sequence_set.ranges:
            a = _ANY_UID if r.start is None else r.start
            b = _ANY_UID if r.end is None else r.end
            spans.append((min(a, b), max(a, b)))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self._starts = [lo for lo, _ in merged]
        self._ends = [hi for _, hi in merged]

    def __contains__(self, uid: int) -> bool:
        i = bisect_right(self._starts, uid) - 1
        return i >= 0 and uid <= self._ends[i]

    def only(self, uids: Iterable[int]) -> list[int]:
        return [u for u in uids if u in self]


async def vanished_earlier(
    s: Session, selected: SelectedMailbox, modseq: int, within: UidSet | None
) -> None:
    """``* VANISHED (EARLIER) uids``: every UID of the set expunged after `modseq` (RFC
    7162 §3.2.6), also one whose expunge this session has not reported yet: EARLIER does
    not change the client's message count, the plain VANISHED that follows does."""
    _rows, gone = await selected.changes_since(modseq)
    uids = [u for u in gone if within is None or u in within]
    if uids:
        s.send(responses.vanished(uids, earlier=True))


async def qresync_select(
    s: Session, selected: SelectedMailbox, q: c.QResync, uidvalidity: int
) -> None:
    """The untagged answers of SELECT/EXAMINE (QRESYNC (uidvalidity modseq [known-uids
    ...])), sent before its tagged OK (RFC 7162 §3.2.5): the UIDs expunged since `modseq`
    as ``VANISHED (EARLIER)``, then ``FETCH (UID FLAGS MODSEQ)`` of every message changed
    since (new ones included), both limited to the known UIDs when the client gave them.
    A UIDVALIDITY that is not the mailbox's means the client's cache is void: nothing is
    sent, the client refetches (RFC 7162 §3.2.5)."""
    view = selected.view
    if q.uidvalidity != uidvalidity:
        return
    known = UidSet(q.known_uids) if q.known_uids is not None else None
    rows, gone = await selected.changes_since(q.modseq)
    # A UID still in the fresh view went after its snapshot: a plain VANISHED follows.
    vanished = [u for u in gone if view.seq_of(u) is None and (known is None or u in known)]
    if vanished:
        s.send(responses.vanished(vanished, earlier=True))
    told = []
    for row in rows:
        seq = view.seq_of(row.uid)
        if seq is None or (known is not None and row.uid not in known):
            continue
        s.untagged(s.flags_fetch(seq, row, with_uid=True))  # FLAGS UID MODSEQ
        told.append(row)
        await s.maybe_flush()
    view.reported(told)
