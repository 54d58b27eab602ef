"""REPLACE and UID REPLACE (RFC 8508): a new message in place of an old one, atomically.

The new message is stored (in any mailbox: RFC 8508 §3.3 lets a draft move to Sent on its
last save) and the old one removed from the selected mailbox whatever its flags, in one
store transaction (`AccountMailboxes.replace`): if either half fails, nothing changed.
The answer is APPEND's and EXPUNGE's: ``* OK [APPENDUID v uid]`` (RFC 8508 §3.3 with
RFC 4315), then ``* n EXPUNGE`` for the old message (``* VANISHED uid`` once QRESYNC is
enabled, RFC 8508 §3.5 with RFC 7162 §3.2.10), and EXISTS when the new message landed in
the selected mailbox (reported with the session's other updates before the tagged OK).

Errors: a read-only mailbox, an unknown UID or a message another session expunged is NO;
a sequence number beyond the last message is BAD (RFC 9051 §9 seq-number), and a missing
target mailbox is ``NO [TRYCREATE]``, as APPEND (RFC 8508 §3.3).
"""

from __future__ import annotations

from pillarbox.model import SeqRange, SequenceSet
from pillarbox.proto.imap import commands as c
from pillarbox.rules.flags import storable_flags
from pillarbox.server.imap import wire
from pillarbox.server.imap.catenate import catenated
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.mailboxes import store_name
from pillarbox.server.imap.session import Session
from pillarbox.services.mailbox import NewMessage, NoSuchMailbox


async def replace(s: Session, cmd: c.Replace) -> bytes:
    selected = s.require_selected()
    if selected.read_only:
        raise CommandNo("Mailbox is read-only", "CANNOT")
    mbx = s.require_mailboxes()
    dest = await mbx.find(store_name(s, cmd.mailbox))
    if dest is None:
        raise CommandNo("No such mailbox", "TRYCREATE")
    message = cmd.message
    data = message.data if message.catenate is None else await catenated(s, mbx, message.catenate)
    if not data:
        raise CommandNo("Empty message")
    if len(data) > s.config.max_literal_size:
        raise CommandNo("Message too large", "TOOBIG")
    view = selected.view
    named = SequenceSet((SeqRange(cmd.number, cmd.number),))
    uids = [u for u in s.resolve(named, uid=cmd.uid) if not view.is_expunged(u)]
    if not uids:
        raise CommandNo("No such message")
    old = uids[0]
    new = NewMessage(data, storable_flags(message.flags), message.internal_date)
    try:
        result = await mbx.replace(selected.mailbox, old, dest, new)
    except NoSuchMailbox as e:
        raise CommandNo(str(e)) from None
    s.untagged(b"OK [APPENDUID %d %d] Replacement Message ID" % (result.uidvalidity, result.uid))
    s.report_expunged(view.expunge_known([old]))
    if s.saved_search:
        s.saved_search = [u for u in s.saved_search if u != old]
    if s.qresync:
        # RFC 7162 §3.2.7 as after EXPUNGE: the tagged OK carries the HIGHESTMODSEQ after
        # the removal, with what others changed meanwhile reported first.
        await s.report_updates(allow_expunge=True)
        code = f"HIGHESTMODSEQ {view.reported_highestmodseq}"
        return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed", code)
    return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed")
