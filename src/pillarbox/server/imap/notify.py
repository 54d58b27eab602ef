"""NOTIFY (RFC 5465): one connection told about every mailbox it cares for.

Theory of operation: ``NOTIFY SET`` turns the event groups into a `Notifications` object
the session keeps (`Session.notifier`). The session's change-bus pump hands it every
event (`record`, no I/O): message events only mark their mailbox as changed, mailbox
events (create, delete, rename, (un)subscribe) mark the name list stale. At the points
where the session reports (end of a command, IDLE, and — NOTIFY being set — whenever a
change arrives while no command runs) `report` turns that into responses:

- a changed mailbox that is not the selected one gets one ``* STATUS`` (RFC 5465 §5.2,
  §5.3, §5.4), however many events touched it since the last report: one store status
  read per mailbox per report, never a query per message;
- a stale name list is read again (one listing and the subscriptions) and compared by
  mailbox id with the last one: a new id is a created mailbox, a missing one a deleted
  mailbox (``\\NonExistent``), an id under a new name a rename (``OLDNAME``), and the
  subscription sets give ``\\Subscribed`` changes (RFC 5465 §5.4, §5.5). Mailbox changes
  are rare, so comparing snapshots costs less than carrying names on every bus event,
  and a lost backlog (`Resync`) is handled the same way (every watched mailbox then
  gets a STATUS, so nothing is missed).

Pushes between commands do not wait for a slow client; the session counts what the
client has left unread instead and, past `imap.notify_max_unread`, sends
NOTIFICATIONOVERFLOW and drops the NOTIFY setting (RFC 5465 §5.8, `Session`).

Which group applies to a mailbox: the selected mailbox follows the ``selected`` /
``selected-delayed`` group (and never gets a STATUS); any other mailbox follows the
first group whose filter matches it, so ``(mailboxes Junk NONE) (personal (...))``
silences Junk (RFC 5465 §6). ``inboxes`` is INBOX: it is where mail is delivered.

Must not: query the store per message or per event, or report another account's
mailboxes (everything goes through the session's `AccountMailboxes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pillarbox.model import (
    HIERARCHY_SEPARATOR,
    Change,
    FlagsChanged,
    Mailbox,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
    Resync,
    SeqRange,
    SequenceSet,
)
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import fetch, names, wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.mailboxes import wire_name
from pillarbox.server.imap.session import Session
from pillarbox.services.mailbox import InvalidMailboxName, normalize_name

NEW: Final = "MESSAGENEW"
EXPUNGE: Final = "MESSAGEEXPUNGE"
FLAGS: Final = "FLAGCHANGE"
NAME: Final = "MAILBOXNAME"
SUBSCRIPTION: Final = "SUBSCRIPTIONCHANGE"

# RFC 5465 §5: the events this server sends, as BADEVENT lists them. AnnotationChange,
# MailboxMetadataChange and ServerMetadataChange need ANNOTATE/METADATA, not offered.
SUPPORTED: Final = {
    NEW: "MessageNew",
    EXPUNGE: "MessageExpunge",
    FLAGS: "FlagChange",
    NAME: "MailboxName",
    SUBSCRIPTION: "SubscriptionChange",
}
_MESSAGE_EVENTS: Final = frozenset({NEW, EXPUNGE, FLAGS})
_SELECTED_FILTERS: Final = frozenset({"SELECTED", "SELECTED-DELAYED"})


@dataclass(frozen=True, slots=True)
class Group:
    """One event group: its filter, the canonical names it takes, its events."""

    filter: str
    names: frozenset[str]
    events: frozenset[str]
    fetch: tuple[c.FetchItem, ...] = ()  # MessageNew's fetch attributes (RFC 5465 §5.2)

    def matches(self, name: str, subscribed: set[str]) -> bool:
        kind = self.filter
        if kind == "PERSONAL":  # RFC 5465 §6: the user's personal namespace: all of ours
            return True
        if kind == "INBOXES":
            return name == "INBOX"
        if kind == "SUBSCRIBED":
            return name in subscribed
        if kind == "MAILBOXES":
            return name in self.names
        if kind == "SUBTREE":  # the mailbox and every mailbox below it
            return any(name == n or name.startswith(n + HIERARCHY_SEPARATOR) for n in self.names)
        return False


class Notifications:
    """What one session asked to be told with NOTIFY SET (the session's `Notifier`)."""

    def __init__(self, selected: Group | None, others: list[Group]) -> None:
        self.selected_group = selected
        self.others = others
        self.boxes: dict[int, Mailbox] = {}  # id → mailbox, as last read
        self.subscribed: set[str] = set()
        self._changed: dict[int, set[str]] = {}  # mailbox id → kinds of message events
        self._names_stale = False
        self._all_changed = False
        self._watch_messages = any(g.events & _MESSAGE_EVENTS for g in others)
        self._watch_names = any(g.events & {NAME, SUBSCRIPTION} for g in others)

    # --- the session's Notifier protocol

    @property
    def selected_push(self) -> bool | None:
        group = self.selected_group
        if group is None or not group.events:
            return None
        return group.filter == "SELECTED"  # RFC 5465 §5.1: "selected-delayed" holds expunges

    @property
    def selected_flags(self) -> bool:
        # RFC 5465 §5.1: a selected group without FlagChange (NONE included) asks for
        # no flag changes, so other sessions' are not sent (the SHOULD of RFC 9051 §5.2
        # gives way to what the client asked), while EXISTS and EXPUNGE still come (a
        # MUST). Without a selected group the selected mailbox is reported as without
        # NOTIFY.
        group = self.selected_group
        return group is None or FLAGS in group.events

    def record(self, change: Change) -> bool:
        if isinstance(change, MessagesAdded):
            return self._mark(change.mailbox_id, NEW)
        if isinstance(change, MessagesExpunged):
            return self._mark(change.mailbox_id, EXPUNGE)
        if isinstance(change, FlagsChanged):
            return self._mark(change.mailbox_id, FLAGS)
        if isinstance(change, MailboxesChanged | Resync):
            self._names_stale = True
            if isinstance(change, Resync):
                self._all_changed = self._watch_messages
            return True
        return False

    async def new_in_selected(self, s: Session, uids: list[int]) -> None:
        """RFC 5465 §5.2: MessageNew with fetch attributes in the selected group sends,
        after EXISTS, ``FETCH (UID ...)`` of the new messages as a UID FETCH of them would
        (one fetch for all of them)."""
        group = self.selected_group
        if group is None or not group.fetch or not uids:
            return
        ranges = tuple(SeqRange(u, u) for u in uids)
        cmd = c.Fetch("*", uid=True, sequence_set=SequenceSet(ranges), items=group.fetch)
        await fetch.fetch(s, cmd)  # its tagged OK is for a command nobody sent: dropped

    def _mark(self, mailbox_id: int, kind: str) -> bool:
        if not self._watch_messages:
            return False
        self._changed.setdefault(mailbox_id, set()).add(kind)
        return True

    async def report(self, s: Session) -> None:
        if self._names_stale:
            self._names_stale = False
            await self._report_names(s)
        changed = self._changed
        self._changed = {}
        if self._all_changed:
            self._all_changed = False
            changed = {mid: set(_MESSAGE_EVENTS) for mid in self.boxes}
        selected_id = s.selected.mailbox.id if s.selected is not None else None
        for mailbox_id, kinds in changed.items():
            box = self.boxes.get(mailbox_id)
            if box is None or mailbox_id == selected_id:
                continue
            group = self.group_for(box.name)
            if group is not None and group.events & kinds:
                await send_status(s, box)

    # --- filters

    def group_for(self, name: str) -> Group | None:
        """The group that decides about a mailbox other than the selected one."""
        for group in self.others:
            if group.matches(name, self.subscribed):
                return group
        return None

    def _wants(self, name: str, event: str) -> bool:
        group = self.group_for(name)
        return group is not None and event in group.events

    # --- mailbox names

    async def load(self, s: Session) -> None:
        """Read the account's mailboxes and subscriptions (at SET and when they change)."""
        mbx = s.require_mailboxes()
        self.boxes = {m.id: m for m in await mbx.list_all()}
        self.subscribed = set(await mbx.subscriptions())

    async def _report_names(self, s: Session) -> None:
        old_boxes, old_subscribed = self.boxes, self.subscribed
        await self.load(s)
        if not self._watch_names:
            return
        renamed: set[str] = set()  # old and new names a reported rename explains
        for mid, box in self.boxes.items():
            before = old_boxes.get(mid)
            if before is None:
                if self._wants(box.name, NAME):  # RFC 5465 §5.4: a new mailbox
                    s.untagged(b'LIST () "/" ' + wire_name(s, box.name))
            elif before.name != box.name and (
                self._wants(box.name, NAME) or self._wants(before.name, NAME)
            ):
                # RFC 5465 §5.4, RFC 5258 §3.4 OLDNAME: a renamed mailbox.
                s.untagged(
                    b'LIST () "/" '
                    + wire_name(s, box.name)
                    + b' ("OLDNAME" ('
                    + wire_name(s, before.name)
                    + b"))"
                )
                renamed.update((before.name, box.name))
        for mid, before in old_boxes.items():
            if mid not in self.boxes and self._wants(before.name, NAME):
                s.untagged(b'LIST (\\NonExistent) "/" ' + wire_name(s, before.name))
        # RFC 5465 §5.5: a name (un)subscribed, by this or another session.
        for name in sorted(self.subscribed - old_subscribed):
            if name not in renamed and self._wants(name, SUBSCRIPTION):
                s.untagged(b'LIST (\\Subscribed) "/" ' + wire_name(s, name))
        current = {b.name for b in self.boxes.values()}
        for name in sorted(old_subscribed - self.subscribed):
            if name not in renamed and self._wants(name, SUBSCRIPTION):
                attrs = b"" if name in current else b"\\NonExistent"
                s.untagged(b"LIST (" + attrs + b') "/" ' + wire_name(s, name))


async def send_status(s: Session, box: Mailbox) -> None:
    """``* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n UNSEEN n)`` for a mailbox that
    is not selected: the same items for ``SET STATUS`` (§3) and for every event (§5.1-§5.3),
    HIGHESTMODSEQ too once CONDSTORE is on (§5.1, RFC 7162 §3.1.7). UIDVALIDITY each
    time, so a client learns from the STATUS itself that a mailbox it caches was deleted
    and created again; UNSEEN is what a FlagChange elsewhere changes. One store read."""
    st = await s.require_mailboxes().status(box)
    items = b"MESSAGES %d UIDNEXT %d UIDVALIDITY %d UNSEEN %d" % (
        st.messages,
        st.uidnext,
        st.uidvalidity,
        st.unseen,
    )
    if s.condstore:
        items += b" HIGHESTMODSEQ %d" % st.highestmodseq
    s.untagged(b"STATUS " + wire_name(s, box.name) + b" (" + items + b")")


def _canonical(s: Session, name: str) -> str | None:
    try:
        return normalize_name(names.from_wire(name, utf8=s.utf8_names))
    except (names.BadName, InvalidMailboxName):
        return None  # no mailbox can have it: the filter simply never matches it


def _group(s: Session, raw: c.NotifyGroup) -> Group:
    events = {e.name for e in raw.events}
    unknown = events - SUPPORTED.keys()
    if unknown:
        # RFC 5465 §5: NO [BADEVENT (the events the server supports)].
        supported = " ".join(SUPPORTED.values())
        raise CommandNo("Unsupported NOTIFY event", f"BADEVENT ({supported})")
    if (NEW in events) != (EXPUNGE in events):
        raise BadCommand("MessageNew and MessageExpunge go together")  # RFC 5465 §5
    if FLAGS in events and NEW not in events:
        raise BadCommand("FlagChange needs MessageNew and MessageExpunge")  # RFC 5465 §5
    canonical = {n for n in (_canonical(s, name) for name in raw.mailboxes) if n is not None}
    # Fetch attributes only mean something for the selected mailbox (RFC 5465 §5.2): the
    # other mailboxes get STATUS.
    items = tuple(i for e in raw.events if e.name == NEW for i in e.fetch)
    return Group(raw.filter, frozenset(canonical), frozenset(events), items)


async def notify(s: Session, cmd: c.Notify) -> bytes:
    """NOTIFY SET / NONE (RFC 5465 §3). SET replaces what was set before."""
    if cmd.groups is None:
        s.notifier = None
        return wire.tagged(cmd.tag, "OK", "NOTIFY completed")
    selected: Group | None = None
    others: list[Group] = []
    for raw in cmd.groups:
        group = _group(s, raw)
        if group.filter in _SELECTED_FILTERS:
            if selected is not None:
                raise BadCommand("Only one selected or selected-delayed group")  # RFC 5465 §8
            selected = group
        else:
            others.append(group)
    notifications = Notifications(selected, others)
    s.notifier = notifications  # first: a change while the snapshot is read is recorded
    await notifications.load(s)
    if cmd.status:
        # RFC 5465 §3: STATUS now for every watched mailbox that is not selected.
        selected_id = s.selected.mailbox.id if s.selected is not None else None
        for box in sorted(notifications.boxes.values(), key=lambda b: b.name):
            watcher = notifications.group_for(box.name)
            if box.id != selected_id and watcher is not None and watcher.events & _MESSAGE_EVENTS:
                await send_status(s, box)
                await s.maybe_flush()
    return wire.tagged(cmd.tag, "OK", "NOTIFY completed")
