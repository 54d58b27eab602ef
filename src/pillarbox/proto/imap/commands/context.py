"""CANCELUPDATE (RFC 5267 §4.3.5): ends the updates a SEARCH or SORT with RETURN (UPDATE)
asked for.

``command-select =/ "CANCELUPDATE" 1*(SP quoted)``: the arguments are the tags of the
searching commands, as quoted strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command


@dataclass(frozen=True, slots=True)
class CancelUpdate(Command):
    """CANCELUPDATE "tag" ... (RFC 5267 §4.3.5): `tags` as sent, at least one."""

    NAME: ClassVar[str] = "CANCELUPDATE"
    tags: tuple[str, ...] = ()
