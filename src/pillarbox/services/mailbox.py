"""Mailbox operations for one account, and the view a selected session keeps of a mailbox.

Owns two things every mail-access front-end (IMAP now, JMAP or the webmail later) needs:

- `AccountMailboxes`: create, delete, rename, subscribe, status, append, copy, move,
  expunge, search for *one* account. Every call is keyed by the account id fixed at login,
  and every name the client sends goes through `normalize_name` first, so no name
  (``..``, ``/x``, ``%``, NUL, very long) can reach another account's mailboxes: the store
  is only ever asked about (account_id, validated name). Store errors become the service
  errors below, which front-ends map to their reply codes.
- `SelectedView`: the per-session list of UIDs a client knows (RFC 9051 §2.3.1.2 message
  sequence numbers are positions in it), held as ``array('I')``, loaded once at SELECT and
  kept current from change-bus events, which carry their data (UIDs, flags, MODSEQ), so
  no event costs a query. Changes are *recorded* when they arrive and *applied* only when
  the front-end asks (`take_updates`), because RFC 9051 §7.5.1 forbids reporting an
  expunge while a FETCH, STORE or SEARCH by sequence number is answered: until then the
  expunged message keeps its sequence number and the numbers never shift under the client.

RFCs: 9051 §2.3.1 (UIDs, sequence numbers), §5.1 (mailbox naming), §6.3.4-6.3.6 (CREATE,
DELETE, RENAME rules), §7.5.1 (when EXPUNGE may be sent); 3501 for IMAP4rev1; 6851 (MOVE).

Must not: know protocol syntax (no IMAP atoms, tags or response codes here), query the
store per message, or accept a mailbox id from a client.
"""

from __future__ import annotations

import contextlib
import logging
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from pillarbox.model import (
    AppendResult,
    Change,
    CopyResult,
    FlagMode,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MailboxStatus,
    MessageInfo,
    MessageMeta,
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
    StoreFlagsResult,
    canonical_flag,
)
from pillarbox.rules.mailbox_names import (
    BadMailboxName,
    is_inferior,
    normalize_mailbox_name,
    parent_names,
)
from pillarbox.services.errors import OverQuota, Rejected, TempFailure
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

log = logging.getLogger("pillarbox.mailbox")

T = TypeVar("T")


# --- errors: each maps to one IMAP response code in the front-end's table -------------------


class InvalidMailboxName(Rejected):
    """The name is not acceptable as a mailbox name (RFC 9051 §5.1)."""


class NoSuchMailbox(Rejected):
    """No mailbox of that name in this account (IMAP ``[NONEXISTENT]``/``[TRYCREATE]``)."""


class MailboxExists(Rejected):
    """The target name is taken (IMAP ``[ALREADYEXISTS]``)."""


class MailboxNotAllowed(Rejected):
    """The operation is never allowed on this mailbox (IMAP ``[CANNOT]``)."""


class MessageSetError(ValueError):
    """A message sequence number outside 1..count (RFC 9051 §9 seq-number)."""


class UnsupportedSearch(ValueError):
    """A search key this server does not evaluate (OLDER/YOUNGER: RFC 5032 WITHIN is
    not offered)."""


_NOTHING: SearchKey = SearchNot(SearchAll())


# --- names ---------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    """The canonical form of a client-supplied mailbox name (`rules.mailbox_names`), or
    `InvalidMailboxName`."""
    try:
        return normalize_mailbox_name(name)
    except BadMailboxName as exc:
        raise InvalidMailboxName(str(exc)) from None


# --- store error translation ---------------------------------------------------------------


async def _call(
    make: Callable[[], Awaitable[T]],
    *,
    not_found: str = "No such mailbox",
    exists: str = "Mailbox already exists",
    conflict: str = "Not allowed on this mailbox",
) -> T:
    """Run a store call and turn store errors into service errors (one table)."""
    try:
        return await make()
    except store_errors.NotFound:
        raise NoSuchMailbox(not_found) from None
    except store_errors.AlreadyExists:
        raise MailboxExists(exists) from None
    except store_errors.Conflict:
        raise MailboxNotAllowed(conflict) from None
    except store_errors.QuotaExceeded:
        raise OverQuota() from None
    except store_errors.StoreUnavailable:
        raise TempFailure("Storage temporarily unavailable") from None


# --- account-scoped mailbox operations ------------------------------------------------------


# Names a session keeps resolved at most (a client touches a handful; a hostile one cannot
# grow it without bound).
MAILBOX_CACHE_SIZE = 256


class AccountMailboxes:
    """Mailbox operations of one logged-in account; the account id never comes from input.

    Name cache: `find` remembers name → `Mailbox` so that a repeated SELECT, APPEND,
    STATUS or COPY/MOVE target costs no store trip. It is only used when the caller
    passes `changes_pending` (a check on the session's change-bus subscription) and that
    says nothing is waiting: every committed CREATE/DELETE/RENAME is published on the bus
    before the call that made it returns, and the subscriber calls `invalidate` when it
    takes a `MailboxesChanged` or `Resync`, so the cache is only trusted when every
    published mailbox change has been seen. A lookup that raced with an invalidation is
    not cached (generation check). Cached entries identify a mailbox (id, name,
    UIDVALIDITY, special use); their counters (UIDNEXT, HIGHESTMODSEQ) may be old, so
    SELECT takes those from its own snapshot.
    """

    def __init__(
        self,
        store: Store,
        account_id: int,
        *,
        changes_pending: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self._changes_pending = changes_pending
        self._cache: dict[str, Mailbox] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every resolved name (a mailbox of the account was created, deleted,
        renamed, or the change feed was lost)."""
        self._cache.clear()
        self._generation += 1

    async def list_all(self) -> list[Mailbox]:
        result: list[Mailbox] = await _call(lambda: self.store.list_mailboxes(self.account_id))
        return [m for m in result if m.account_id == self.account_id]

    async def subscriptions(self) -> list[str]:
        result: list[str] = await _call(lambda: self.store.list_subscriptions(self.account_id))
        return result

    async def find(self, name: str) -> Mailbox | None:
        """The mailbox of that name, None if absent or if the name is not acceptable
        (no such mailbox can exist, so hostile names simply find nothing)."""
        try:
            canonical = normalize_name(name)
        except InvalidMailboxName:
            return None
        pending = self._changes_pending
        usable = pending is not None and not pending()
        if usable:
            cached = self._cache.get(canonical)
            if cached is not None:
                return cached
        generation = self._generation
        mailbox: Mailbox | None = await _call(
            lambda: self.store.get_mailbox(self.account_id, canonical)
        )
        if mailbox is None or mailbox.account_id != self.account_id:
            return None
        if usable and generation == self._generation:
            if len(self._cache) >= MAILBOX_CACHE_SIZE:
                self._cache.clear()
            self._cache[canonical] = mailbox
        return mailbox

    async def get(self, name: str) -> Mailbox:
        mailbox = await self.find(name)
        if mailbox is None:
            raise NoSuchMailbox("No such mailbox")
        return mailbox

    async def by_id(self, mailbox_id: int) -> Mailbox | None:
        """Re-read a mailbox this session already resolved (never an id from the client)."""
        mailbox: Mailbox | None = await _call(lambda: self.store.get_mailbox_by_id(mailbox_id))
        if mailbox is None or mailbox.account_id != self.account_id:
            return None
        return mailbox

    async def create(self, name: str, special_use: str | None = None) -> Mailbox:
        """CREATE: parents are created as needed (RFC 9051 §6.3.4)."""
        canonical = normalize_name(name)
        if canonical == "INBOX" or await self.find(canonical) is not None:
            raise MailboxExists("Mailbox already exists")
        await self._ensure_parents(canonical)
        try:
            mailbox: Mailbox = await _call(
                lambda: self.store.create_mailbox(self.account_id, canonical, special_use)
            )
        finally:
            self.invalidate()
        return mailbox

    async def _ensure_parents(self, name: str) -> None:
        for parent in parent_names(name):
            if await self.find(parent) is None:
                with contextlib.suppress(MailboxExists):  # created concurrently: fine
                    await self._create_one(parent)

    async def _create_one(self, name: str) -> None:
        try:
            await _call(lambda: self.store.create_mailbox(self.account_id, name))
        finally:
            self.invalidate()

    async def delete(self, name: str) -> None:
        canonical = normalize_name(name)
        if canonical == "INBOX":
            raise MailboxNotAllowed("INBOX cannot be deleted")
        await self.get(canonical)
        try:
            await _call(
                lambda: self.store.delete_mailbox(self.account_id, canonical),
                conflict="This mailbox cannot be deleted",
            )
        finally:
            self.invalidate()

    async def rename(self, old: str, new: str) -> None:
        """RENAME (RFC 9051 §6.3.6): children move along; INBOX is moved into a new mailbox
        and left empty (done by the store)."""
        src = normalize_name(old)
        dst = normalize_name(new)
        await self.get(src)
        if dst == "INBOX" or await self.find(dst) is not None:
            raise MailboxExists("Target mailbox already exists")
        if src != "INBOX" and (dst == src or is_inferior(dst, src)):
            raise MailboxNotAllowed("Cannot rename a mailbox into itself")
        await self._ensure_parents(dst)
        try:
            await _call(
                lambda: self.store.rename_mailbox(self.account_id, src, dst),
                conflict="This mailbox cannot be renamed",
            )
        finally:
            self.invalidate()

    async def subscribe(self, name: str, subscribed: bool) -> None:
        """Subscriptions are kept by name (RFC 9051 §6.3.7 allows a nonexistent name)."""
        canonical = normalize_name(name)
        if subscribed:
            await self.get(canonical)
        await _call(lambda: self.store.set_subscribed(self.account_id, canonical, subscribed))

    async def status(self, mailbox: Mailbox) -> MailboxStatus:
        status: MailboxStatus = await _call(lambda: self.store.mailbox_status(mailbox.id))
        return status

    async def append(
        self,
        mailbox: Mailbox,
        data: bytes,
        meta: MessageMeta,
        flags: frozenset[str],
        internaldate: datetime | None,
    ) -> AppendResult:
        """Write the message durably, then make it visible (one store transaction)."""
        writer = self.store.new_blob()
        try:
            await writer.write(data)
            blob = await writer.finish()
        except BaseException:
            await writer.abort()
            raise
        result: AppendResult = await _call(
            lambda: self.store.append(mailbox.id, blob, meta, flags, internaldate)
        )
        return result

    async def copy(self, src: Mailbox, uids: Sequence[int], dst: Mailbox) -> CopyResult:
        result: CopyResult = await _call(lambda: self.store.copy(src.id, uids, dst.id))
        return result

    async def move(self, src: Mailbox, uids: Sequence[int], dst: Mailbox) -> CopyResult:
        result: CopyResult = await _call(lambda: self.store.move(src.id, uids, dst.id))
        return result


# --- the selected-mailbox view --------------------------------------------------------------


@dataclass(slots=True)
class Updates:
    """What a front-end must tell the client, in this order (RFC 9051 §7.4, §7.5)."""

    expunged: list[int] = field(default_factory=list)  # sequence numbers, send in this order
    exists: int | None = None  # new message count, if it changed
    flags: list[tuple[int, FlagRow]] = field(default_factory=list)  # (seq, row), ascending

    def __bool__(self) -> bool:
        return bool(self.expunged or self.exists is not None or self.flags)


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
        self._added: list[FlagRow] = []
        self._expunged: set[int] = set()  # expunged in the store, maybe still in `uids`
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
        uids: list[int] = await _call(lambda: store.uids(self.mailbox.id))
        self._loaded(uids)

    async def load_selected(self, store: Store) -> tuple[MailboxStatus, int | None]:
        """`load` for SELECT: also the mailbox status and the lowest unseen UID, all read
        in one store transaction (one round trip instead of three)."""
        snapshot: tuple[list[int], MailboxStatus, int | None] = await _call(
            lambda: store.select_snapshot(self.mailbox.id)
        )
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

    def uids_for_sequence(self, ranges: Iterable[tuple[int | None, int | None]]) -> list[int]:
        """Sequence-set ranges (None is "*") to UIDs, ascending and unique.

        A number above the message count is an error, and so is "*" when the mailbox is
        empty (RFC 9051 §9 seq-number: the server should answer BAD).
        """
        n = len(self.uids)
        picked: list[tuple[int, int]] = []
        for start, end in ranges:
            a = n if start is None else start
            b = n if end is None else end
            if n == 0 or any(x is not None and not 1 <= x <= n for x in (start, end)):
                raise MessageSetError("Invalid message sequence number")
            lo, hi = (a, b) if a <= b else (b, a)
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
        and ``\\Recent``, which is never set here (RFC 9051 dropped it), matches
        nothing. Recursion depth is bounded by the parser."""
        match key:
            case SearchSequence(sequence_set=seqset, uid=uid):
                uids = self.resolve(seqset, uid=uid, saved=saved)
                return SearchUids(tuple(_uid_ranges(uids))) if uids else _NOTHING
            case SearchFlag(flag=flag, present=present):
                if canonical_flag(flag).lower() == "\\recent":
                    return _NOTHING if present else SearchAll()
                return key
            case SearchWithin():
                raise UnsupportedSearch("Search key not supported")
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
            self.highestmodseq = max(self.highestmodseq, change.modseq)
        else:
            return False
        return True

    @property
    def has_pending(self) -> bool:
        return bool(self._resync or self._added or self._flags or self._expunged)

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
        now: list[int] = await _call(lambda: store.uids(self.mailbox.id))
        present = set(now)
        for uid in self.uids:
            if uid not in present:
                self._expunged.add(uid)
        top = max(self.max_uid, max((r.uid for r in self._added), default=0))
        newer = [u for u in now if u > top]
        if newer:
            rows: list[FlagRow] = await _call(lambda: store.fetch_flags(self.mailbox.id, newer))
            self._added.extend(rows)
        changed, _gone = await _call(
            lambda: store.changes_since(self.mailbox.id, self.highestmodseq)
        )
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
                    self._gone.discard(row.uid)  # came and went between two looks
                    continue
                if row.uid > self.max_uid:
                    self.uids.append(row.uid)
                    self.uidnext = max(self.uidnext, row.uid + 1)
        if self._expunged:
            present = [u for u in self._expunged if self.seq_of(u) is not None]
            self._expunged = set(present)
            if allow_expunge and present:
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
        known: list[int] = []
        for u in uids:
            if self.seq_of(u) is not None:
                known.append(u)
            elif u > self.max_uid:
                self._gone.add(u)
        return self._remove(known)

    def reported(self, rows: Iterable[FlagRow]) -> None:
        """The client was just told these flags (FETCH after STORE, implicit \\Seen)."""
        for row in rows:
            self._reported[row.uid] = row.modseq
            self.highestmodseq = max(self.highestmodseq, row.modseq)
        if len(self._reported) > 100_000:
            self._reported.clear()  # bound memory; the cost is at most a repeated FETCH


def _uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending UIDs as inclusive ranges (the store's `SearchUids`)."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(uids)):
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


# --- convenience wrappers used with a view ----------------------------------------------------


async def set_flags(
    store: Store,
    view: SelectedView,
    uids: Sequence[int],
    flags: frozenset[str],
    mode: FlagMode,
    unchanged_since: int | None = None,
) -> StoreFlagsResult:
    result: StoreFlagsResult = await _call(
        lambda: store.set_flags(view.mailbox.id, uids, flags, mode, unchanged_since)
    )
    return result


async def expunge(store: Store, view: SelectedView, uids: Sequence[int] | None) -> list[int]:
    result: list[int] = await _call(lambda: store.expunge(view.mailbox.id, uids))
    return result


async def search(store: Store, view: SelectedView, key: SearchKey) -> list[int]:
    result: list[int] = await _call(lambda: store.search(view.mailbox.id, key))
    return result


async def fetch_flags(store: Store, view: SelectedView, uids: Sequence[int]) -> list[FlagRow]:
    """FLAGS and MODSEQ of the given UIDs of the selected mailbox: one query."""
    result: list[FlagRow] = await _call(lambda: store.fetch_flags(view.mailbox.id, uids))
    return result


async def fetch_flag_bits(
    store: Store, view: SelectedView, uids: Sequence[int]
) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
    """`fetch_flags` as raw ``(uid, flag_bits, modseq)`` rows plus keywords by UID (bit
    ``1 << i`` is ``SYSTEM_FLAGS[i]``), for formatting many FLAGS lines: one query."""
    result: tuple[list[tuple[int, int, int]], dict[int, list[str]]] = await _call(
        lambda: store.fetch_flag_bits(view.mailbox.id, uids)
    )
    return result


async def fetch_info(store: Store, view: SelectedView, uids: Sequence[int]) -> list[MessageInfo]:
    """Precomputed rows (envelope, structure, size...) of the given UIDs: one query."""
    result: list[MessageInfo] = await _call(lambda: store.fetch(view.mailbox.id, uids))
    return result


async def fetch_info_with_files(
    store: Store, view: SelectedView, uids: Sequence[int], max_bytes: int
) -> list[tuple[MessageInfo, bytes | None]]:
    """`fetch_info` plus the whole message files (up to about `max_bytes` of them; None
    past that or for a message gone), in one store call."""
    result: list[tuple[MessageInfo, bytes | None]] = await _call(
        lambda: store.fetch_with_bodies(view.mailbox.id, uids, max_bytes)
    )
    return result


async def read_message(
    store: Store, view: SelectedView, uid: int, start: int = 0, length: int | None = None
) -> bytes:
    """Bytes of one message of the selected mailbox, or a range of them."""
    result: bytes = await _call(
        lambda: store.read_message(view.mailbox.id, uid, start, length),
        not_found="Message is gone",
    )
    return result


async def read_messages(
    store: Store, view: SelectedView, ranges: Sequence[tuple[int, int, int | None]]
) -> list[bytes | None]:
    """Byte ranges ``(uid, start, length)`` of messages of the selected mailbox, all in
    one store call; None for a message that is gone."""
    result: list[bytes | None] = await _call(lambda: store.read_messages(view.mailbox.id, ranges))
    return result


async def remove_appended(store: Store, mailbox: Mailbox, uids: Sequence[int]) -> None:
    """Undo the first messages of a failed MULTIAPPEND (RFC 3502: all or nothing)."""
    with contextlib.suppress(Exception):
        await store.set_flags(mailbox.id, uids, frozenset({"\\Deleted"}), FlagMode.ADD)
        await store.expunge(mailbox.id, uids)
