"""APPEND with flags and internal date, MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502),
APPENDUID (RFC 4315), literal8 / UTF8 (RFC 3516, RFC 6855), APPENDLIMIT (RFC 7889),
CATENATE (RFC 4469, joined in `catenate`; each message of a MULTIAPPEND may be one).

The size limit is enforced by the core before a literal is read (``NO [TOOBIG]``); the
service parses each message once and stores it (all or nothing for MULTIAPPEND).

Must not: append to a mailbox outside the account (looked up by `AccountMailboxes`).
"""

from __future__ import annotations

from pillarbox.proto.imap import commands as c
from pillarbox.rules.flags import storable_flags
from pillarbox.server.imap import wire
from pillarbox.server.imap.catenate import catenated
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.mailboxes import store_name
from pillarbox.server.imap.session import Session
from pillarbox.services.mailbox import NewMessage


async def append(s: Session, cmd: c.Append) -> bytes:
    mbx = s.require_mailboxes()
    dest = await mbx.find(store_name(s, cmd.mailbox))
    if dest is None:
        raise CommandNo("No such mailbox", "TRYCREATE")  # RFC 9051 §6.3.12
    messages: list[NewMessage] = []
    for msg in cmd.messages:
        data = msg.data if msg.catenate is None else await catenated(s, mbx, msg.catenate)
        if not data:
            raise CommandNo("Empty message")
        if len(data) > s.config.max_literal_size:
            raise CommandNo("Message too large", "TOOBIG")
        messages.append(NewMessage(data, storable_flags(msg.flags), msg.internal_date))
    results = await mbx.append_all(dest, messages)
    uidvalidity = results[-1].uidvalidity if results else dest.uidvalidity
    code = f"APPENDUID {uidvalidity} {wire.sequence_set([r.uid for r in results]).decode()}"
    return wire.tagged(cmd.tag, "OK", "APPEND completed", code)
