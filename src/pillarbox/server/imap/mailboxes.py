"""Mailbox-level commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST (LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB, NAMESPACE, STATUS,
CLOSE, UNSELECT.

RFC 9051 §6.3.1-§6.3.11, §6.4.2; RFC 3501 §6.3.9 (LSUB); RFC 5258 (LIST-EXTENDED);
RFC 5819 (LIST-STATUS); RFC 6154 (SPECIAL-USE); RFC 2342 (NAMESPACE); RFC 3691 (UNSELECT);
RFC 7162 (SELECT/EXAMINE (CONDSTORE) and (QRESYNC ...), HIGHESTMODSEQ).

Must not: pass a client name to the store without `services.mailbox` validation (done
inside `AccountMailboxes`), or list anything but the logged-in account's mailboxes.
"""

from __future__ import annotations

from pillarbox.model import HIERARCHY_SEPARATOR as SEP
from pillarbox.model import Mailbox, MailboxStatus, objectids
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import names, resync, wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.session import Session
from pillarbox.services.mailbox import MailboxNotAllowed, NoSuchMailbox


def store_name(s: Session, wire_name: str) -> str:
    """The client's name in store form (modified UTF-7 decoded for IMAP4rev1)."""
    try:
        return names.from_wire(wire_name, utf8=s.utf8_names)
    except names.BadName:
        raise NoSuchMailbox("Invalid mailbox name") from None


def wire_name(s: Session, name: str) -> bytes:
    return wire.string(names.to_wire(name, utf8=s.utf8_names), utf8=s.utf8_names)


async def _close_selected(s: Session, *, expunge_deleted: bool) -> None:
    selected = s.selected
    if selected is None:
        return
    s.select(None)
    if expunge_deleted and not selected.read_only:
        # RFC 9051 §6.4.1: CLOSE expunges silently. Only what the client knew.
        await selected.expunge_silently()


async def select(s: Session, cmd: c.Select | c.Examine) -> bytes:
    read_only = isinstance(cmd, c.Examine)
    mbx = s.require_mailboxes()
    if cmd.qresync is not None and not s.qresync:
        raise BadCommand("QRESYNC is not enabled")  # RFC 7162 §3.2.5
    if cmd.condstore:
        s.enabled.add("CONDSTORE")  # RFC 7162 §3.1.8: SELECT (CONDSTORE) enables it
    had_selected = s.selected is not None
    await _close_selected(s, expunge_deleted=False)
    if had_selected:
        s.untagged(b"OK [CLOSED] Previous mailbox closed")  # RFC 9051 §7.1 CLOSED
    mailbox = await mbx.find(store_name(s, cmd.mailbox))
    if mailbox is None:
        if s.conn.state.name == "SELECTED":
            s.conn.unselected()
        raise CommandNo("No such mailbox", "NONEXISTENT")
    selected = s.new_selected(mailbox, read_only=read_only)
    s.select(selected)  # before loading: change events are recorded from now on
    try:
        # UIDs, counters and the first unseen UID (RFC 3501 §6.3.1 OK [UNSEEN n], dropped
        # by RFC 9051) in one store transaction.
        status, first_unseen = await selected.open()
    except BaseException:
        s.select(None)
        if s.conn.state.name == "SELECTED":
            s.conn.unselected()
        raise
    view = selected.view
    assert s.announced is not None  # set by `s.select`
    for line in s.announced.lines():  # FLAGS, PERMANENTFLAGS
        s.untagged(line)
    s.untagged(b"%d EXISTS" % view.count)
    if not s.rev2:
        s.untagged(b"%d RECENT" % await selected.claim_recent())  # RFC 3501 §2.3.2
        first = None if first_unseen is None else view.seq_of(first_unseen)
        if first is not None:
            s.untagged(b"OK [UNSEEN %d] First unseen" % first)
    s.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % status.uidvalidity)
    s.untagged(b"OK [MAILBOXID (" + _mailbox_id(mailbox) + b")] Ok")  # RFC 8474 §4.1
    uidnext = max(status.uidnext, view.max_uid + 1)
    s.untagged(b"OK [UIDNEXT %d] Predicted next UID" % uidnext)
    if s.condstore:
        # RFC 7162 §3.1.2.1 (never NOMODSEQ, §3.1.2.2: every mailbox keeps MODSEQs).
        s.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % status.highestmodseq)
    if s.rev2:
        s.untagged(b'LIST () "/" ' + wire_name(s, mailbox.name))
    if cmd.qresync is not None:
        await resync.qresync_select(s, selected, cmd.qresync, status.uidvalidity)
    s.conn.selected(read_only=read_only)
    code = "READ-ONLY" if read_only else "READ-WRITE"
    return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed", code)


async def close(s: Session, cmd: c.Close) -> bytes:
    # RFC 7162 §3.2.8: the expunge takes a MODSEQ like any other, but the tagged OK MUST
    # NOT carry [HIGHESTMODSEQ]: CLOSE sends no VANISHED, so a client that stored the value
    # would never learn of the messages CLOSE removed.
    await _close_selected(s, expunge_deleted=True)
    s.conn.unselected()
    return wire.tagged(cmd.tag, "OK", "CLOSE completed")


async def unselect(s: Session, cmd: c.Unselect) -> bytes:
    await _close_selected(s, expunge_deleted=False)
    s.conn.unselected()
    return wire.tagged(cmd.tag, "OK", "UNSELECT completed")


# RFC 6154 §3 (CREATE-SPECIAL-USE): the uses a created mailbox can hold. \\All and
# \\Flagged name virtual mailboxes (every message, every flagged one) that the store does
# not build, so a plain mailbox marked so would mislead clients: USEATTR refuses them.
_SPECIAL_USES = frozenset({"\\ARCHIVE", "\\DRAFTS", "\\JUNK", "\\SENT", "\\TRASH"})


async def create(s: Session, cmd: c.Create) -> bytes:
    special: str | None = None
    if cmd.special_use:
        if len(cmd.special_use) > 1:
            raise CommandNo("Only one special use per mailbox", "USEATTR")
        if cmd.special_use[0].upper() not in _SPECIAL_USES:
            raise CommandNo("Unknown special use", "USEATTR")
        special = "\\" + cmd.special_use[0][1:].capitalize()
    try:
        created = await s.require_mailboxes().create(store_name(s, cmd.mailbox), special)
    except MailboxNotAllowed as e:
        # RFC 6154 §3: the use cannot be assigned (one mailbox per use): NO [USEATTR]
        raise CommandNo(str(e), "USEATTR") from None
    # RFC 8474 §4.1: the new mailbox's MAILBOXID in the tagged OK
    code = "MAILBOXID (" + objectids.mailbox_object_id(created.id) + ")"
    return wire.tagged(cmd.tag, "OK", "CREATE completed", code)


def _mailbox_id(mailbox: Mailbox) -> bytes:
    return objectids.mailbox_object_id(mailbox.id).encode()


async def delete(s: Session, cmd: c.Delete) -> bytes:
    name = store_name(s, cmd.mailbox)
    mbx = s.require_mailboxes()
    target = await mbx.find(name)
    if target is None:
        raise CommandNo("No such mailbox", "NONEXISTENT")
    if s.selected is not None and s.selected.mailbox.id == target.id:
        raise CommandNo("Cannot delete the selected mailbox; close it first", "INUSE")
    await mbx.delete(name)
    return wire.tagged(cmd.tag, "OK", "DELETE completed")


async def rename(s: Session, cmd: c.Rename) -> bytes:
    await s.require_mailboxes().rename(store_name(s, cmd.mailbox), store_name(s, cmd.new_name))
    return wire.tagged(cmd.tag, "OK", "RENAME completed")


async def subscribe(s: Session, cmd: c.Subscribe | c.Unsubscribe) -> bytes:
    on = isinstance(cmd, c.Subscribe)
    await s.require_mailboxes().subscribe(store_name(s, cmd.mailbox), on)
    return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed")


async def namespace(s: Session, cmd: c.Namespace) -> bytes:
    s.untagged(b'NAMESPACE (("" "/")) NIL NIL')
    return wire.tagged(cmd.tag, "OK", "NAMESPACE completed")


def _status_items(
    items: tuple[str, ...], mailbox: Mailbox, st: MailboxStatus, limit: int, recent: int = 0
) -> bytes:
    out: list[bytes] = []
    values = {
        "MESSAGES": st.messages,
        "UIDNEXT": st.uidnext,
        "UIDVALIDITY": st.uidvalidity,
        "UNSEEN": st.unseen,
        "DELETED": st.deleted,
        # RFC 9208 §4.2: what EXPUNGE would free, as the sum of the RFC822.SIZEs of the
        # \Deleted messages (which is exact here: a message takes its size of quota).
        # RFC 9208 §4.2: in the STORAGE resource's units, 1024 octets (rounded up, as
        # the quota's usage is).
        "DELETED-STORAGE": -(-st.deleted_size // 1024),
        "SIZE": st.size,
        "RECENT": recent,
        "HIGHESTMODSEQ": st.highestmodseq,
        "APPENDLIMIT": limit,
    }
    for item in items:
        if item in values:
            out.append(b"%s %d" % (item.encode(), values[item]))
        elif item == "MAILBOXID":  # RFC 8474 §4.3
            out.append(b"MAILBOXID (" + _mailbox_id(mailbox) + b")")
    return b"(" + b" ".join(out) + b")"


async def status(s: Session, cmd: c.Status) -> bytes:
    mbx = s.require_mailboxes()
    mailbox = await mbx.find(store_name(s, cmd.mailbox))
    if mailbox is None:
        raise CommandNo("No such mailbox", "NONEXISTENT")
    if "HIGHESTMODSEQ" in cmd.items:
        s.enable_condstore()  # RFC 7162 §3.1.7
    st = await mbx.status(mailbox)
    recent = await mbx.count_recent(mailbox) if "RECENT" in cmd.items else 0
    s.untagged(
        b"STATUS "
        + wire_name(s, mailbox.name)
        + b" "
        + _status_items(cmd.items, mailbox, st, s.config.max_literal_size, recent)
    )
    return wire.tagged(cmd.tag, "OK", "STATUS completed")


# ---------------------------------------------------------------------- LIST

# RFC 5258 §3 (CHILDREN, SUBSCRIBED), RFC 6154 §5.1 (SPECIAL-USE); STATUS (RFC 5819) is
# parsed apart.
_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})


def _special(m: Mailbox | None) -> list[str]:
    return [m.special_use] if m is not None and m.special_use else []


async def list_(s: Session, cmd: c.List) -> bytes:
    mbx = s.require_mailboxes()
    sel = set(cmd.selection_options)
    ret = set(cmd.return_options)
    for opt in sel:
        if opt not in {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}:
            raise BadCommand("Unknown LIST selection option")
    if "RECURSIVEMATCH" in sel and not (sel & {"SUBSCRIBED", "SPECIAL-USE"}):
        raise BadCommand("RECURSIVEMATCH needs another selection option")  # RFC 5258 §3
    for opt in ret:
        if opt not in _RETURN_OPTIONS:
            raise BadCommand("Unknown LIST return option")  # RFC 5258 §3
    reference = names.pattern_from_wire(cmd.reference, utf8=s.utf8_names)
    patterns = [names.pattern_from_wire(p, utf8=s.utf8_names) for p in cmd.patterns]
    if patterns == [""] and not cmd.extended:
        # RFC 9051 §6.3.9: the hierarchy delimiter and root.
        s.untagged(b'LIST (\\Noselect) "/" ""')
        return wire.tagged(cmd.tag, "OK", "LIST completed")
    regexes = [names.list_pattern(reference, p) for p in patterns if p != ""]
    boxes = {m.name: m for m in await mbx.list_all()}
    subscribed: set[str] = set(await mbx.subscriptions())
    want_subscribed = "SUBSCRIBED" in sel or "SUBSCRIBED" in ret
    # Every name that exists or is a level above one (these are \NonExistent/\Noselect).
    all_names: set[str] = set(boxes)
    for name in list(boxes) + list(subscribed):
        parts = name.split(SEP)
        for i in range(1, len(parts)):
            all_names.add(SEP.join(parts[:i]))
    if "SUBSCRIBED" in sel:
        all_names |= subscribed

    def has_children(name: str) -> bool:
        prefix = name + SEP
        return any(n.startswith(prefix) for n in boxes)

    lines: list[tuple[str, list[str], bytes]] = []
    for name in sorted(all_names, key=lambda n: (n != "INBOX", n)):
        if not any(r.match(name) for r in regexes):
            continue
        m = boxes.get(name)
        attrs: list[str] = []
        extra = b""
        if m is None:
            attrs.append("\\NonExistent" if cmd.extended else "\\Noselect")
        if "SUBSCRIBED" in sel and name not in subscribed:
            # RFC 5258 §3 RECURSIVEMATCH: a name that is not selected itself is listed,
            # with CHILDINFO (§3.5), when a descendant is selected — whether or not the
            # pattern matches that descendant (§3, RECURSIVEMATCH note 2; RFC 9051
            # §6.3.9's table). A name that is selected itself gets no CHILDINFO.
            prefix = name + SEP
            if "RECURSIVEMATCH" in sel and any(x.startswith(prefix) for x in subscribed):
                extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
            else:
                continue
        if "SPECIAL-USE" in sel and not _special(m):
            continue
        if m is None and name not in subscribed and not has_children(name):
            continue
        attrs.append("\\HasChildren" if has_children(name) else "\\HasNoChildren")
        if want_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        attrs += _special(m)
        lines.append((name, attrs, extra))
    if cmd.status_items is not None and "HIGHESTMODSEQ" in cmd.status_items:
        s.enable_condstore()  # RFC 7162 §3.1: STATUS HIGHESTMODSEQ, here via LIST-STATUS
    for name, attrs, extra in lines:
        s.untagged(b"LIST (" + " ".join(attrs).encode() + b') "/" ' + wire_name(s, name) + extra)
        m = boxes.get(name)
        if cmd.status_items is not None and m is not None:
            st = await mbx.status(m)
            recent = await mbx.count_recent(m) if "RECENT" in cmd.status_items else 0
            s.untagged(
                b"STATUS "
                + wire_name(s, name)
                + b" "
                + _status_items(cmd.status_items, m, st, s.config.max_literal_size, recent)
            )
    return wire.tagged(cmd.tag, "OK", "LIST completed")


async def lsub(s: Session, cmd: c.Lsub) -> bytes:
    mbx = s.require_mailboxes()
    reference = names.pattern_from_wire(cmd.reference, utf8=s.utf8_names)
    pattern = names.pattern_from_wire(cmd.pattern, utf8=s.utf8_names)
    if pattern == "":
        s.untagged(b'LSUB (\\Noselect) "/" ""')
        return wire.tagged(cmd.tag, "OK", "LSUB completed")
    regex = names.list_pattern(reference, pattern)
    boxes = {m.name for m in await mbx.list_all()}
    subscribed = set(await mbx.subscriptions())
    # RFC 3501 §6.3.9: when "%" stops at a level above a subscribed name, that level is
    # listed, with \Noselect if it is not subscribed itself.
    candidates = set(subscribed)
    for name in subscribed:
        parts = name.split(SEP)
        candidates.update(SEP.join(parts[:i]) for i in range(1, len(parts)))
    for name in sorted(candidates):
        if regex.match(name):
            selectable = name in subscribed and name in boxes
            attrs = b"" if selectable else b"\\Noselect"
            s.untagged(b"LSUB (" + attrs + b') "/" ' + wire_name(s, name))
    return wire.tagged(cmd.tag, "OK", "LSUB completed")
