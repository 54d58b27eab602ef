"""The view a selected session keeps of its mailbox: the UIDs its client knows.

`SelectedView` holds the per-session list of UIDs (RFC 9051 §2.3.1.2 message sequence
numbers are positions in it) as ``array('I')``, loaded once at SELECT and kept current
from change-bus events, which carry their data (UIDs, flags, MODSEQ), so no event costs
a query. Changes are *recorded* when they arrive and *applied* only when the front-end
asks (`take_updates`), because RFC 9051 §7.5.1 forbids reporting an expunge while a
FETCH, STORE or SEARCH by sequence number is answered: until then the expunged message
keeps its sequence number and the numbers never shift under the client. The view also
resolves what only a session can: message sets (sequence numbers, UIDs, the saved
result "$" of RFC 5182) into UIDs, and search keys into what the store can run.

RFCs: 9051 §2.3.1 (UIDs, sequence numbers), §6.4.4 (SEARCH), §6.4.9 (UID sets), §7.4.1
and §7.5.1 (EXISTS, EXPUNGE); 7162 (MODSEQ).

Must not: know protocol syntax (no IMAP atoms, tags or response codes here), query the
store per message, or accept a mailbox id from a client.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pillarbox.model import (
    Change,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MailboxStatus,
    MessagesAdded,
    MessagesExpunged,
    Resync,
    SearchAll,
    SearchAnd,
    SearchFlag,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchUids,
    SearchWithin,
    SequenceSet,
    canonical_flag,
)
from pillarbox.services.mailbox import call_store
from pillarbox.store.api import Store


class MessageSetError(ValueError):
    """A message sequence number outside 1..count (RFC 9051 §9 seq-number)."""


_NOTHING: SearchKey = SearchNot(SearchAll())


@dataclass(slots=True)
class Updates:
    """What a front-end must tell the client, in this order (RFC 9051 §7.4, §7.5)."""

    expunged: list[int] = field(default_factory=list)  # sequence numbers, send in this order
    vanished: list[int] = field(default_factory=list)  # the same messages' UIDs, ascending
    exists: int | None = None  # new message count, if it changed
    flags: list[tuple[int, FlagRow]] = field(default_factory=list)  # (seq, row), ascending

    def __bool__(self) -> bool:
        return bool(self.expunged or self.exists is not None or self.flags)


@dataclass(frozen=True, slots=True)
class Removed:
    """Messages this session removed from its view: their sequence numbers, highest first
    (one EXPUNGE each), and their UIDs, ascending (one VANISHED for all)."""

    seqs: list[int]
    uids: list[int]


class SelectedView:
    """The client's picture of one selected mailbox: UIDs in sequence order.

    Theory of operation: `uids` is what the client knows — sequence number n is
    ``uids[n-1]``. Change events only go into pending buffers (`record`); `take_updates`
    applies them: adds append (only UIDs above the last one known, so a repeated event is
    harmless), expunges remove — but only when the caller says expunges may be reported
    now; otherwise the expunged UIDs stay in place, still counted in EXISTS, until a
    later command may report them. Flag changes this session already reported itself
    (STORE, implicit \\Seen) are remembered by MODSEQ and not reported twice.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        uids: Iterable[int] = (),
        *,
        read_only: bool,
        highestmodseq: int | None = None,
        loading: bool = False,
    ) -> None:
        self.mailbox = mailbox
        self.read_only = read_only
        self.uids: array[int] = array("I", uids)
        self.highestmodseq = mailbox.highestmodseq if highestmodseq is None else highestmodseq
        self.uidnext = mailbox.uidnext
        self.exists_reported = len(self.uids)
        # RFC 3501 §2.3.2 \Recent, IMAP4rev1 only: the UIDs this session took as recent
        # (`SelectedMailbox.claim_recent`) and the highest UID it has looked at for that.
        self.recent: set[int] = set()
        self.recent_top = 0
        self.recent_reserved = 0  # claimed for this session, store call still to make
        self._added: list[FlagRow] = []
        self._expunged: set[int] = set()  # expunged in the store, maybe still in `uids`
        # Lowest MODSEQ among the expunges in `_expunged` (None: unknown or none): what the
        # client may be told as its HIGHESTMODSEQ stays below it (`reported_highestmodseq`).
        self._expunge_floor: int | None = None
        self._flags: dict[int, FlagRow] = {}
        self._reported: dict[int, int] = {}  # uid -> MODSEQ the client already saw
        self._gone: set[int] = set()  # UIDs above the view expunged before being seen
        self._resync = False
        # Events that arrive while the UID list is being read are kept and replayed once
        # it is there, so nothing committed around SELECT is lost or misread.
        self._early: list[Change] | None = [] if loading else None

    async def load(self, store: Store) -> None:
        """Read the UID list (once, at SELECT), then replay events that came meanwhile.

        Subscribe and create the view with ``loading=True`` *before* calling this.
        """
        uids = await call_store(store.uids(self.mailbox.id))
        self._loaded(uids)

    async def load_selected(self, store: Store) -> tuple[MailboxStatus, int | None]:
        """`load` for SELECT: also the mailbox status and the lowest unseen UID, all read
        in one store transaction (one round trip instead of three)."""
        snapshot = await call_store(store.select_snapshot(self.mailbox.id))
        uids, status, first_unseen = snapshot
        # The Mailbox may come from a name cache: its counters can be old, the snapshot's
        # are not (events replayed by `_loaded` only raise them further).
        self.highestmodseq = max(self.highestmodseq, status.highestmodseq)
        self.uidnext = max(self.uidnext, status.uidnext)
        self._loaded(uids)
        return status, first_unseen

    def _loaded(self, uids: list[int]) -> None:
        self.uids = array("I", uids)
        self.exists_reported = len(self.uids)
        early, self._early = self._early or [], None
        for change in early:
            self.record(change)

    # -- sizes and lookups, no queries --

    @property
    def count(self) -> int:
        return len(self.uids)

    @property
    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """Sequence number of a UID the client knows, None otherwise."""
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def is_expunged(self, uid: int) -> bool:
        """Expunged in the store but not yet reported (still holds its number)."""
        return uid in self._expunged

    def uids_for_sequence(
        self, ranges: Iterable[tuple[int | None, int | None]], *, strict: bool = True
    ) -> list[int]:
        """Sequence-set ranges (None is "*") to UIDs, ascending and unique.

        A number above the message count is an error, and so is "*" when the mailbox is
        empty (RFC 9051 §9 seq-number: the server should answer BAD). Not `strict` (a
        SEARCH key, which selects rather than acts), numbers beyond the last message
        match nothing.
        """
        n = len(self.uids)
        picked: list[tuple[int, int]] = []
        for start, end in ranges:
            a = n if start is None else start
            b = n if end is None else end
            if strict and (n == 0 or any(x is not None and not 1 <= x <= n for x in (start, end))):
                raise MessageSetError("Invalid message sequence number")
            lo, hi = (a, b) if a <= b else (b, a)
            lo, hi = max(lo, 1), min(hi, n)
            if lo <= hi:
                picked.append((lo, hi))
        return self._merge_slices(picked, lambda lo, hi: (lo - 1, hi))

    def uids_for_uid_set(self, ranges: Iterable[tuple[int | None, int | None]]) -> list[int]:
        """UID-set ranges (None is "*": the highest UID known) to the UIDs present.

        RFC 9051 §6.4.9: UIDs that do not exist are ignored; ``n:*`` always includes the
        last message even when n is above it.
        """
        top = self.max_uid
        picked: list[tuple[int, int]] = []
        for start, end in ranges:
            a = top if start is None else start
            b = top if end is None else end
            lo, hi = (a, b) if a <= b else (b, a)
            picked.append((lo, hi))
        uids = self.uids
        return self._merge_slices(
            picked, lambda lo, hi: (bisect_left(uids, lo), bisect_right(uids, hi))
        )

    def _merge_slices(
        self, ranges: list[tuple[int, int]], index: Callable[[int, int], tuple[int, int]]
    ) -> list[int]:
        spans = sorted(index(lo, hi) for lo, hi in ranges)
        out: list[int] = []
        cur_start = cur_end = -1
        for s, e in spans:
            if s >= e:
                continue
            if s <= cur_end:
                cur_end = max(cur_end, e)
                continue
            if cur_end > cur_start:
                out.extend(self.uids[cur_start:cur_end])
            cur_start, cur_end = s, e
        if cur_end > cur_start:
            out.extend(self.uids[cur_start:cur_end])
        return out

    def known(self, uids: Iterable[int]) -> list[int]:
        """The given UIDs the client knows, ascending (drop newer and unknown ones)."""
        return [u for u in sorted(set(uids)) if self.seq_of(u) is not None]

    def resolve(self, sequence_set: SequenceSet, *, uid: bool, saved: Sequence[int]) -> list[int]:
        """The UIDs a message set names, from the view alone (RFC 9051 §6.4.9; "$" is
        `saved`, the session's RFC 5182 result)."""
        if sequence_set.saved:
            return self.known(saved)
        ranges = [(r.start, r.end) for r in sequence_set.ranges]
        return self.uids_for_uid_set(ranges) if uid else self.uids_for_sequence(ranges)

    def resolve_search(self, key: SearchKey, saved: Sequence[int]) -> SearchKey:
        """The key as the store can run it: message sets become UID ranges (no query),
        and ``\\Recent`` (not stored: RFC 9051 dropped it) the UIDs this session holds
        as recent, none unless an IMAP4rev1 session claimed some. Recursion depth is
        bounded by the parser."""
        match key:
            case SearchSequence(sequence_set=seqset, uid=uid):
                if seqset.saved or uid:
                    uids = self.resolve(seqset, uid=uid, saved=saved)
                else:
                    # A message set beyond the last message matches nothing, rather
                    # than failing the whole SEARCH (as Dovecot and Cyrus answer).
                    ranges = [(r.start, r.end) for r in seqset.ranges]
                    uids = self.uids_for_sequence(ranges, strict=False)
                return SearchUids(tuple(uid_ranges(uids))) if uids else _NOTHING
            case SearchFlag(flag=flag, present=present):
                if canonical_flag(flag).lower() == "\\recent":
                    recent: SearchKey = (
                        SearchUids(tuple(uid_ranges(self.recent))) if self.recent else _NOTHING
                    )
                    return recent if present else SearchNot(recent)
                return key
            case SearchWithin(op=op, seconds=seconds):
                # RFC 5032 §3: the interval is subtracted from the server's current time.
                return SearchWithin(op, seconds, cutoff=int(time.time()) - seconds)
            case SearchNot(key=inner):
                return SearchNot(self.resolve_search(inner, saved))
            case SearchOr(left=left, right=right):
                return SearchOr(self.resolve_search(left, saved), self.resolve_search(right, saved))
            case SearchAnd(keys=keys):
                return SearchAnd(tuple(self.resolve_search(k, saved) for k in keys))
        return key

    # -- recording events (called from the subscription reader; never mutates `uids`) --

    def record(self, change: Change) -> bool:
        """Buffer one change-bus event; True when it concerns this mailbox."""
        if self._early is not None:
            self._early.append(change)
            return False
        if isinstance(change, Resync):
            self._resync = True
            return True
        if getattr(change, "mailbox_id", None) != self.mailbox.id:
            return False
        if isinstance(change, MessagesAdded):
            self._added.extend(change.rows)
            for row in change.rows:
                self.highestmodseq = max(self.highestmodseq, row.modseq)
        elif isinstance(change, FlagsChanged):
            for row in change.rows:
                self._flags[row.uid] = row
                self.highestmodseq = max(self.highestmodseq, row.modseq)
        elif isinstance(change, MessagesExpunged):
            top = self.max_uid
            for uid in change.uids:
                # A UID above the view was added and expunged before the client heard of
                # it: it must never appear (no EXISTS, no EXPUNGE for it).
                (self._gone if uid > top else self._expunged).add(uid)
            if any(uid <= top for uid in change.uids):
                floor = self._expunge_floor
                self._expunge_floor = change.modseq if floor is None else min(floor, change.modseq)
            self.highestmodseq = max(self.highestmodseq, change.modseq)
        else:
            return False
        return True

    @property
    def needs_resync(self) -> bool:
        """A lost change feed must be reloaded from the store (`resync`) first."""
        return self._resync

    @property
    def pending_top(self) -> int:
        """The highest UID the view will hold once `take_updates` applies what is
        recorded (what a \\Recent claim must cover), without applying it."""
        top = self.max_uid
        for row in self._added:
            if row.uid > top and row.uid not in self._gone:
                top = row.uid
        return top

    @property
    def has_pending(self) -> bool:
        return bool(self._resync or self._added or self._flags or self._expunged)

    @property
    def reported_highestmodseq(self) -> int:
        """A HIGHESTMODSEQ the client may be given now (RFC 7162 §3.1.2.1, §3.2): below any
        expunge it has not been told yet (held back during FETCH, STORE or SEARCH by
        number), so a client that keeps it and resynchronises later still learns of it.
        Flag changes and new messages recorded are reported at the end of every command."""
        if self._expunged:
            floor = self._expunge_floor if self._expunge_floor is not None else 1
            return min(self.highestmodseq, floor - 1)
        return self.highestmodseq

    @property
    def has_expunges(self) -> bool:
        """Expunges are waiting to be reported (they hold sequence numbers)."""
        return bool(self._expunged)

    async def resync(self, store: Store) -> None:
        """After a lost backlog: compare with the store and buffer the differences."""
        if not self._resync:
            return
        self._resync = False
        self._gone.clear()
        now = await call_store(store.uids(self.mailbox.id))
        present = set(now)
        for uid in self.uids:
            if uid not in present:
                self._expunged.add(uid)
                # Unseen expunges came after every event recorded before the loss.
                floor = self.highestmodseq + 1
                if self._expunge_floor is None or floor < self._expunge_floor:
                    self._expunge_floor = floor
        top = max(self.max_uid, max((r.uid for r in self._added), default=0))
        newer = [u for u in now if u > top]
        if newer:
            rows = await call_store(store.fetch_flags(self.mailbox.id, newer))
            self._added.extend(rows)
        changed, _gone = await call_store(store.changes_since(self.mailbox.id, self.highestmodseq))
        for row in changed:
            self._flags[row.uid] = row
            self.highestmodseq = max(self.highestmodseq, row.modseq)

    # -- applying --

    def take_updates(self, *, allow_expunge: bool) -> Updates:
        """Apply buffered changes and say what to report (RFC 9051 §7.5.1)."""
        out = Updates()
        if self._added:
            rows = sorted(self._added, key=lambda r: r.uid)
            self._added.clear()
            for row in rows:
                if row.uid in self._gone:
                    continue  # came and went between two looks
                if row.uid > self.max_uid:
                    self.uids.append(row.uid)
                    self.uidnext = max(self.uidnext, row.uid + 1)
            # Only now: a repeated add of a UID that came and went (another node's relay
            # may repeat one) must not bring it back either.
            self._gone.difference_update(row.uid for row in rows)
        if self._expunged:
            present = [u for u in self._expunged if self.seq_of(u) is not None]
            self._expunged = set(present)
            if not present:
                self._expunge_floor = None
            if allow_expunge and present:
                out.vanished = sorted(present)
                out.expunged = self._remove(present)
        if len(self.uids) != self.exists_reported:
            # EXISTS never shrinks here: held-back expunges still count (RFC 9051 §7.4.1).
            self.exists_reported = len(self.uids)
            out.exists = len(self.uids)
        if self._flags:
            pending = self._flags
            self._flags = {}
            for uid, row in sorted(pending.items()):
                seen = self._reported.pop(uid, 0)
                if row.modseq <= seen:
                    continue
                seq = self.seq_of(uid)
                if seq is None or uid in self._expunged:
                    continue
                out.flags.append((seq, row))
        return out

    def _remove(self, uids: Iterable[int]) -> list[int]:
        """Drop UIDs from the view; their sequence numbers, highest first, so each
        reported EXPUNGE leaves the numbers still to report unchanged."""
        gone = set(uids)
        seqs = sorted((s for u in gone if (s := self.seq_of(u)) is not None), reverse=True)
        self.uids = array("I", (u for u in self.uids if u not in gone))
        self._expunged.difference_update(gone)
        self.recent.difference_update(gone)
        if not self._expunged:
            self._expunge_floor = None
        for u in gone:
            self._flags.pop(u, None)
            self._reported.pop(u, None)
        # Each EXPUNGE response lowers the client's count by one (RFC 9051 §7.5.1).
        self.exists_reported = max(0, self.exists_reported - len(seqs))
        return seqs

    def expunged_now(self, uids: Iterable[int]) -> list[int]:
        """This session expunged `uids` itself: remove them and return the sequence numbers
        to report (highest first). UIDs the client never saw are remembered so that their
        late MessagesAdded event does not bring them back."""
        return self.expunge_known(uids).seqs

    def expunge_known(self, uids: Iterable[int]) -> Removed:
        """`expunged_now`, also saying which of `uids` the client knew (the UIDs a
        ``VANISHED`` response names, RFC 7162 §3.2.10)."""
        known: list[int] = []
        for u in uids:
            if self.seq_of(u) is not None:
                known.append(u)
            elif u > self.max_uid:
                self._gone.add(u)
        return Removed(self._remove(known), sorted(set(known)))

    def reported(self, rows: Iterable[FlagRow]) -> None:
        """The client was just told these flags (FETCH after STORE, implicit \\Seen)."""
        self.reported_modseqs((row.uid, row.modseq) for row in rows)

    def reported_modseqs(self, pairs: Iterable[tuple[int, int]]) -> None:
        """`reported`, from ``(uid, modseq)`` pairs (a FETCH (CHANGEDSINCE) answer)."""
        for uid, modseq in pairs:
            self._reported[uid] = modseq
            self.highestmodseq = max(self.highestmodseq, modseq)
        if len(self._reported) > 100_000:
            self._reported.clear()  # bound memory; the cost is at most a repeated FETCH


def uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending UIDs as inclusive ranges (the store's `SearchUids`)."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(uids)):
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out
