"""COMPRESS (RFC 4978): the command that turns on DEFLATE for the rest of the connection.

After the server's OK it calls `conn.compression_started()`, which hands back the bytes
already received after the command (they are compressed) and resets the framing; the
listener's stream then inflates and deflates every byte (`server.listener.Deflate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """COMPRESS mechanism (RFC 4978 §3); `mechanism` is upper-cased ("DEFLATE")."""

    NAME: ClassVar[str] = "COMPRESS"
    mechanism: str = "DEFLATE"
