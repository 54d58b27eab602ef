"""UNAUTHENTICATE (RFC 8437): end the login but keep the connection.

After the tagged OK the session is as it was right after connecting (or after STARTTLS):
no user, no selected mailbox (closed without expunging, as UNSELECT does), nothing
ENABLEd, no change-bus subscription. TLS and COMPRESS stay on: they belong to the
connection, and RFC 8437 §3 keeps the security layer.

Must not: let anything of the previous user reach the next one (the session forgets the
account, its mailbox cache, "$" and the pending updates before answering).
"""

from __future__ import annotations

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.session import Session


async def unauthenticate(s: Session, cmd: c.Unauthenticate) -> bytes:
    await s.end_login()
    return wire.tagged(cmd.tag, "OK", "Not authenticated any more")
