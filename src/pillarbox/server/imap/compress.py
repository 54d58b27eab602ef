"""COMPRESS DEFLATE (RFC 4978): compress the rest of the connection, both ways.

The work is in the listener's stream (`Stream.start_compression`): after the tagged OK
(sent uncompressed) every byte read is inflated and every write deflated and flushed.
Inside TLS the stream already reads and writes TLS records, so compression sits inside
TLS, as RFC 4978 §6 asks. IDLE and every other command see plain bytes as before.

Must not: compress the OK itself (the client turns on compression only after reading it),
or turn compression on twice (RFC 4978 §3: NO [COMPRESSIONACTIVE], RFC 5530).
"""

from __future__ import annotations

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.session import Session

MECHANISMS = ("DEFLATE",)


async def compress(s: Session, cmd: c.Compress) -> None:
    if cmd.mechanism not in MECHANISMS:
        raise BadCommand("Unknown compression mechanism")  # RFC 4978 §3: BAD
    if s.stream.compression_active:
        raise CommandNo("DEFLATE is already active", "COMPRESSIONACTIVE")
    s.send(wire.tagged(cmd.tag, "OK", "DEFLATE active"))
    await s.flush()
    s.stream.start_compression(s.conn.compression_started())
