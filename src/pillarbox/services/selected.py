"""The selected mailbox of one session: its view and every operation on its messages.

`SelectedMailbox` is what a front-end's message commands call once a mailbox is selected
(IMAP SELECT/EXAMINE; later the webmail's open folder): FETCH (through
`services.fetching`), flag changes, expunges, SEARCH, and keeping the session's
`SelectedView` current. Each method is one store call for any number of messages (never
one per message), takes UIDs the view resolved, and maps store errors to service errors.

RFCs: 9051 §6.4 (selected-state commands), §7.5.1 (expunges are reported by the view,
not here); 7162 §3.1.3 (UNCHANGEDSINCE); 5182 ("$", resolved by the view).

Must not: know protocol syntax, or touch a mailbox other than the one selected (other
mailboxes are reached through `AccountMailboxes`, which checks the account).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Sequence

from pillarbox.model import (
    FlagMode,
    FlagRow,
    FlagText,
    Mailbox,
    MailboxStatus,
    SearchAnd,
    SearchKey,
    SearchUids,
    SequenceSet,
    StoreFlagsResult,
)
from pillarbox.model.sorting import SortCriterion
from pillarbox.services import fetching, recent_floor, sorting
from pillarbox.services.fetching import FetchedMessage, Section
from pillarbox.services.mailbox import call_store
from pillarbox.services.threads import ThreadNode
from pillarbox.services.view import Removed, SelectedView, uid_ranges
from pillarbox.store.api import Store


class SelectedMailbox:
    """One session's selected mailbox (see the module docstring)."""

    def __init__(self, store: Store, mailbox: Mailbox, *, read_only: bool) -> None:
        self._store = store
        # Events that arrive while the UID list loads are kept and replayed (`open`).
        self.view = SelectedView(mailbox, read_only=read_only, loading=True)

    @classmethod
    def of_messages(
        cls, store: Store, mailbox: Mailbox, uids: Sequence[int], *, read_only: bool
    ) -> SelectedMailbox:
        """A selection that knows exactly `uids` (ascending), made without a store call:
        for a front-end that names messages by UID in each request instead of keeping a
        session (the webmail). `fetch` and `flags` then answer only for those of `uids`
        that still exist in `mailbox`, so a UID from a URL reaches nothing else."""
        selected = cls(store, mailbox, read_only=read_only)
        selected.view = SelectedView(mailbox, uids, read_only=read_only)
        return selected

    @property
    def mailbox(self) -> Mailbox:
        return self.view.mailbox

    @property
    def read_only(self) -> bool:
        return self.view.read_only

    async def open(self) -> tuple[MailboxStatus, int | None]:
        """Load the view (UIDs, counters and the lowest unseen UID in one store call).
        Subscribe to the account's changes before calling this, so nothing committed
        around SELECT is lost."""
        return await self.view.load_selected(self._store)

    async def resync(self) -> None:
        """Reload what a lost change feed hid from the view (no-op unless it did)."""
        await self.view.resync(self._store)

    def resolve(self, sequence_set: SequenceSet, *, uid: bool, saved: Sequence[int]) -> list[int]:
        """UIDs of a message set, from the view alone (no query)."""
        return self.view.resolve(sequence_set, uid=uid, saved=saved)

    async def claim_recent(self) -> int:
        """Take as \\Recent the messages of the view no session took before, and return
        how many this session holds as recent (IMAP4rev1 only, RFC 3501 §2.3.2).

        The store keeps one watermark per mailbox, the highest UID already taken; a
        read-write session raises it to the top of its view in one transaction, so each
        message is recent for exactly one session: the first to select the mailbox
        after it arrived, or the one that has it selected when it arrives (called again
        when new messages are reported). EXAMINE reads the watermark and moves nothing
        (RFC 3501 §6.3.2). One store call, and none when the view did not grow.
        """
        view = self.view
        top = view.max_uid
        if top > view.recent_top:
            mailbox = self.mailbox
            reserved = view.recent_reserved > view.recent_top  # by `recent_settles_locally`
            if (
                not reserved
                and recent_floor.known(self._store, mailbox.id, mailbox.uidvalidity) >= top
            ):
                # Another session took (or is taking) these: nothing new is recent here.
                view.recent_top = top
                return len(view.recent)
            up_to = None if self.read_only else top
            if up_to is not None:
                recent_floor.raise_to(self._store, mailbox.id, mailbox.uidvalidity, up_to)
            before = await call_store(self._store.claim_recent(mailbox.id, up_to))
            recent_floor.raise_to(self._store, mailbox.id, mailbox.uidvalidity, before)
            start = bisect_right(view.uids, max(before, view.recent_top))
            view.recent.update(view.uids[start:])
            view.recent_top = top
            view.recent_reserved = 0
        return len(view.recent)

    def recent_settles_locally(self, top: int) -> bool:
        """Whether taking \\Recent up to UID `top` needs no store call (`settle_recent`
        then does it). When it does need one, a read-write session reserves the claim
        now, raising the watermark known in this process: the other sessions woken by
        the same delivery then settle theirs locally, and this one's `claim_recent`
        makes the store call. So a push to many IMAP4rev1 sessions costs one claim."""
        view = self.view
        if top <= view.recent_top:
            return True
        mailbox = self.mailbox
        if view.recent_reserved <= view.recent_top and (
            recent_floor.known(self._store, mailbox.id, mailbox.uidvalidity) >= top
        ):
            return True
        if not self.read_only:
            recent_floor.raise_to(self._store, mailbox.id, mailbox.uidvalidity, top)
            view.recent_reserved = top
        return False

    def settle_recent(self) -> int:
        """`claim_recent` after `recent_settles_locally` said no store call is needed."""
        view = self.view
        view.recent_top = max(view.recent_top, view.max_uid)
        return len(view.recent)

    # --- reading ------------------------------------------------------------------------

    async def flags(self, uids: Sequence[int]) -> list[FlagRow]:
        """FLAGS and MODSEQ of the given UIDs: one query."""
        return await call_store(self._store.fetch_flags(self.mailbox.id, uids))

    async def flag_bits(
        self, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        """`flags` as raw ``(uid, flag_bits, modseq)`` rows plus keywords by UID (bit
        ``1 << i`` is ``SYSTEM_FLAGS[i]``), for formatting many FLAGS lines: one query."""
        return await call_store(self._store.fetch_flag_bits(self.mailbox.id, uids))

    async def flag_text(
        self, uids: Sequence[int], *, modseq: bool = False, changed_since: int | None = None
    ) -> FlagText:
        """`flags` as one text the store built (`FlagText`: a line per message), for FLAGS
        fetches of many messages; a `range` of UIDs is one range scan. One query."""
        return await call_store(
            self._store.fetch_flag_text(
                self.mailbox.id, uids, modseq=modseq, changed_since=changed_since
            )
        )

    async def changes_since(self, modseq: int) -> tuple[list[FlagRow], list[int]]:
        """Rows whose MODSEQ is above `modseq` (FLAGS, MODSEQ), and the UIDs expunged
        after it, both ascending: one store call (RFC 7162 §3.1.4, §3.2.5)."""
        return await call_store(self._store.changes_since(self.mailbox.id, modseq))

    def fetch(
        self,
        uids: Sequence[int],
        sections: Sequence[Section],
        *,
        set_seen: bool,
        stream: bool = False,
    ) -> AsyncIterator[list[FetchedMessage]]:
        """Rows and section bytes of `uids`, in batches (`services.fetching`); with
        `set_seen` (a non-PEEK body fetch) ``\\Seen`` is set unless the mailbox is
        read-only; with `stream`, large sections come as `FetchedMessage.streams`."""
        return fetching.fetch_messages(
            self._store,
            self.view,
            uids,
            sections,
            set_seen=set_seen and not self.read_only,
            stream=stream,
        )

    async def fetch_whole(
        self, uids: Sequence[int], *, set_seen: bool
    ) -> list[FetchedMessage] | None:
        """`fetch` of the whole messages of a few `uids` in one store call
        (`fetching.fetch_whole`); None when `fetch` must answer instead."""
        return await fetching.fetch_whole(
            self._store, self.view, uids, set_seen=set_seen and not self.read_only
        )

    async def search(self, key: SearchKey, saved: Sequence[int]) -> list[int]:
        """UIDs matching `key` (message sets resolved by the view), ascending; only those
        the client already knows."""
        return await self.matching(self.resolve_search(key, saved))

    def resolve_search(self, key: SearchKey, saved: Sequence[int]) -> SearchKey:
        """The key as the store runs it, message sets resolved now (`SelectedView`)."""
        return self.view.resolve_search(key, saved)

    async def matching(self, resolved: SearchKey, among: Sequence[int] | None = None) -> list[int]:
        """UIDs matching a key `resolve_search` gave, ascending, only those the client
        knows; with `among`, only those of these UIDs (one query either way)."""
        if among is not None:
            if not among:
                return []
            resolved = SearchAnd((resolved, SearchUids(tuple(uid_ranges(among)))))
        found = await call_store(self._store.search(self.mailbox.id, resolved))
        return [u for u in found if self.view.seq_of(u) is not None]

    async def in_order(self, uids: Sequence[int], criteria: Sequence[SortCriterion]) -> list[int]:
        """`uids` in the order of `criteria` (RFC 5256 §3): one store read."""
        return await sorting.sorted_uids(self._store, self.mailbox.id, uids, criteria)

    async def sort(
        self, criteria: Sequence[SortCriterion], key: SearchKey, saved: Sequence[int]
    ) -> list[int]:
        """SORT (RFC 5256): the UIDs `search` finds, in the order of `criteria`."""
        return await self.in_order(await self.search(key, saved), criteria)

    async def thread(
        self, algorithm: str, key: SearchKey, saved: Sequence[int]
    ) -> list[ThreadNode]:
        """THREAD (RFC 5256): the threads of the messages `search` finds."""
        found = await self.search(key, saved)
        return await sorting.threads(self._store, self.mailbox.id, found, algorithm)

    # --- changing -----------------------------------------------------------------------

    async def set_flags(
        self,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> StoreFlagsResult:
        """Change flags of `uids` in one store call; the view notes what the client is
        about to be told, so the change is not reported twice."""
        result = await call_store(
            self._store.set_flags(self.mailbox.id, uids, flags, mode, unchanged_since)
        )
        self.view.reported(result.changed)
        return result

    async def expunge(self, uids: Sequence[int] | None = None) -> Removed:
        """Expunge the ``\\Deleted`` messages (only among `uids` if given); returns what to
        report: sequence numbers, highest first, and UIDs (the view drops them now)."""
        gone = await call_store(self._store.expunge(self.mailbox.id, uids))
        return self.view.expunge_known(gone)

    async def expunge_silently(self) -> None:
        """CLOSE (RFC 9051 §6.4.1): expunge what the client knew, report nothing."""
        await call_store(self._store.expunge(self.mailbox.id, list(self.view.uids)))
