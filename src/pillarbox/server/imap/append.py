"""APPEND with flags and internal date, MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502),
APPENDUID (RFC 4315), literal8 / UTF8 (RFC 3516, RFC 6855), APPENDLIMIT (RFC 7889).

Each message is parsed once here by `pillarbox.message.parse` (off the event loop for
large ones) so that the store keeps ENVELOPE, BODYSTRUCTURE, search columns and part
offsets, and FETCH never re-parses. The size limit is enforced by the core before the
literal is read (``NO [TOOBIG]``).

MULTIAPPEND is all or nothing (RFC 3502 §6.3.11): if a later message fails, the ones
already stored are removed again before the NO.

Must not: append to a mailbox outside the account (looked up by `AccountMailboxes`).
"""

from __future__ import annotations

import asyncio

from pillarbox.message.parse import parse
from pillarbox.model import MessageMeta
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.mailboxes import store_name
from pillarbox.server.imap.session import CommandNo, Session
from pillarbox.server.imap.store_cmd import _flags
from pillarbox.services.mailbox import remove_appended

PARSE_IN_THREAD = 256 * 1024


async def _meta(data: bytes) -> MessageMeta:
    return await asyncio.to_thread(parse, data) if len(data) > PARSE_IN_THREAD else parse(data)


async def append(s: Session, cmd: c.Append) -> bytes:
    mbx = s.require_mailboxes()
    dest = await mbx.find(store_name(s, cmd.mailbox))
    if dest is None:
        raise CommandNo("No such mailbox", "TRYCREATE")  # RFC 9051 §6.3.12
    for msg in cmd.messages:
        if not msg.data:
            raise CommandNo("Empty message")
        if len(msg.data) > s.config.max_literal_size:
            raise CommandNo("Message too large", "TOOBIG")
    done: list[int] = []
    uidvalidity = dest.uidvalidity
    try:
        for msg in cmd.messages:
            meta = await _meta(msg.data)
            result = await mbx.append(dest, msg.data, meta, _flags(msg.flags), msg.internal_date)
            done.append(result.uid)
            uidvalidity = result.uidvalidity
    except BaseException:
        if done:
            await remove_appended(s.store, dest, done)
        raise
    code = f"APPENDUID {uidvalidity} {wire.sequence_set(done).decode()}"
    return wire.tagged(cmd.tag, "OK", "APPEND completed", code)
