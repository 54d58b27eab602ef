"""CANCELUPDATE (RFC 5267 §4.3.5): end the updates of searches and sorts made with
RETURN (UPDATE). The contexts themselves are the session's (`Session.live`).

An unknown tag is refused with NO and nothing is cancelled, so a client never loses a
context to a typo in another; the RFC leaves this case open.
"""

from __future__ import annotations

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.session import Session


async def cancelupdate(s: Session, cmd: c.CancelUpdate) -> bytes:
    s.require_selected()
    if any(tag not in s.live for tag in cmd.tags):
        raise CommandNo("No updating search or sort has that tag")
    for tag in cmd.tags:
        s.live.cancel(tag)
        s.live_fetch.pop(tag, None)
    return wire.tagged(cmd.tag, "OK", "Updates cancelled")
