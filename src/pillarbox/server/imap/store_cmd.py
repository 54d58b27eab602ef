"""Commands that change messages of the selected mailbox: STORE, COPY, MOVE, EXPUNGE,
UID EXPUNGE.

RFC 9051 §6.4.3 (EXPUNGE), §6.4.6 (STORE), §6.4.7 (COPY), §6.4.8 (MOVE, RFC 6851),
§6.4.9 and RFC 4315 (UID EXPUNGE, COPYUID), RFC 7162 §3.1.3 (UNCHANGEDSINCE, MODSEQ in
the FETCH answers), §3.2.7 and §3.2.10 (VANISHED and HIGHESTMODSEQ once QRESYNC is on). STORE on
any number of messages is one store call; its FETCH answers come from the returned rows
(one more query only for the messages whose flags did not change, and only without
.SILENT).

Must not: send EXPUNGE during STORE (the session holds them back), or touch a mailbox
that is not the account's (destinations are looked up through `AccountMailboxes`).
"""

from __future__ import annotations

from pillarbox.model import FlagMode, FlagRow
from pillarbox.proto.imap import commands as c
from pillarbox.rules.flags import storable_flags
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.mailboxes import store_name
from pillarbox.server.imap.session import Session

_MODES = {"replace": FlagMode.REPLACE, "add": FlagMode.ADD, "remove": FlagMode.REMOVE}


async def store(s: Session, cmd: c.Store) -> bytes:
    selected = s.require_selected()
    if selected.read_only:
        raise CommandNo("Mailbox is read-only", "CANNOT")
    flags = storable_flags(cmd.flags)
    if cmd.unchanged_since is not None:
        s.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    uids = s.resolve(cmd.sequence_set, uid=cmd.uid)
    if not uids:
        return wire.tagged(cmd.tag, "OK", "STORE completed")
    result = await selected.set_flags(uids, flags, _MODES[cmd.mode], cmd.unchanged_since)
    view = selected.view
    if cmd.silent and s.condstore:
        # RFC 7162 §3.1.3: .SILENT still reports the new MODSEQ of each changed message.
        for row in result.changed:
            seq = view.seq_of(row.uid)
            if seq is not None:
                with_uid = b"UID %d " % row.uid if cmd.uid or s.qresync else b""
                s.untagged(b"%d FETCH (%sMODSEQ (%d))" % (seq, with_uid, row.modseq))
                await s.maybe_flush()
    if not cmd.silent:
        rows: dict[int, FlagRow] = {r.uid: r for r in result.changed}
        modified = set(result.modified)
        rest = [u for u in uids if u not in rows and u not in modified]
        if rest:
            for r in await selected.flags(rest):
                rows[r.uid] = r
        for uid in sorted(rows):
            seq = view.seq_of(uid)
            if seq is not None:
                # Once QRESYNC is on every FETCH names its UID (RFC 5162 erratum 1807).
                s.untagged(s.flags_fetch(seq, rows[uid], with_uid=cmd.uid or s.qresync))
                await s.maybe_flush()
    if result.modified:
        numbers = result.modified if cmd.uid else [view.seq_of(u) or 0 for u in result.modified]
        return wire.tagged(
            cmd.tag,
            "OK",
            "Conditional STORE failed",
            "MODIFIED " + wire.sequence_set(numbers).decode(),
        )
    return wire.tagged(cmd.tag, "OK", "STORE completed")


async def copy(s: Session, cmd: c.Copy | c.Move) -> bytes:
    selected = s.require_selected()
    is_move = isinstance(cmd, c.Move)
    if is_move and selected.read_only:
        raise CommandNo("Mailbox is read-only", "CANNOT")
    mbx = s.require_mailboxes()
    dest = await mbx.find(store_name(s, cmd.mailbox))
    if dest is None:
        raise CommandNo("No such mailbox", "TRYCREATE")
    view = selected.view
    uids = [u for u in s.resolve(cmd.sequence_set, uid=cmd.uid) if not view.is_expunged(u)]
    if not uids:
        return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed (no messages)")
    if is_move:
        result = await mbx.move(selected.mailbox, uids, dest)
    else:
        result = await mbx.copy(selected.mailbox, uids, dest)
    code = None
    if result.source_uids:
        # RFC 4315 §3: the two sets pair up element by element, in source-UID order.
        src = wire.sequence_set(result.source_uids).decode()
        dst = ",".join(map(str, result.dest_uids))
        code = f"COPYUID {result.uidvalidity} {src} {dst}"
    if not is_move:
        return wire.tagged(cmd.tag, "OK", "COPY completed", code)
    # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
    if code:
        s.untagged(b"OK [" + code.encode() + b"] Moved")
    s.report_expunged(view.expunge_known(result.source_uids))  # VANISHED: RFC 7162 §3.2.10
    _forget_saved(s)
    return wire.tagged(cmd.tag, "OK", "MOVE completed")


def _forget_saved(s: Session) -> None:
    selected = s.selected
    if selected is not None and s.saved_search:
        s.saved_search = [u for u in s.saved_search if selected.view.seq_of(u) is not None]


async def expunge_cmd(s: Session, cmd: c.Expunge | c.UidExpunge) -> bytes:
    selected = s.require_selected()
    if selected.read_only:
        raise CommandNo("Mailbox is read-only", "CANNOT")
    # Report what others did first, so the numbers below are the client's.
    await s.report_updates(allow_expunge=True)
    if isinstance(cmd, c.UidExpunge):
        uids = s.resolve(cmd.sequence_set, uid=True)
        if not uids:
            return wire.tagged(cmd.tag, "OK", "UID EXPUNGE completed")
        expunged = await selected.expunge(uids)
    else:
        expunged = await selected.expunge()
    s.report_expunged(expunged)  # VANISHED once QRESYNC is on: RFC 7162 §3.2.10
    _forget_saved(s)
    if s.qresync:
        # RFC 7162 §3.2.7 (EXPUNGE), §3.2.9 (UID EXPUNGE): the tagged OK carries the
        # HIGHESTMODSEQ after the expunge (a MUST once one message went; harmless when none
        # did). What others changed meanwhile is reported first, so the client misses
        # nothing below it. CONDSTORE alone asks for no code. CLOSE is the opposite
        # (§3.2.8, `mailboxes.close`).
        await s.report_updates(allow_expunge=True)
        code = f"HIGHESTMODSEQ {selected.view.reported_highestmodseq}"
        return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed", code)
    return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed")
