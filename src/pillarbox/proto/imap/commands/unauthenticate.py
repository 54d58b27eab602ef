"""UNAUTHENTICATE (RFC 8437): back to the not-authenticated state on the same connection.

After the server's OK it calls `conn.unauthenticated()`, which returns the core to
NOT_AUTHENTICATED and forgets what ENABLE turned on (RFC 8437 §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command


@dataclass(frozen=True, slots=True)
class Unauthenticate(Command):
    """UNAUTHENTICATE (RFC 8437 §3); valid in the authenticated and selected states."""

    NAME: ClassVar[str] = "UNAUTHENTICATE"
