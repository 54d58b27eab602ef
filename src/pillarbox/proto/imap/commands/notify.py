"""NOTIFY (RFC 5465): the command that asks for unsolicited updates about many mailboxes.

``NOTIFY SET [STATUS] (filter (events)) ...`` replaces what the session is told about;
``NOTIFY NONE`` stops it. Event names are kept upper-cased as atoms, so an event the
server does not know still parses and can be refused by name (``NO [BADEVENT ...]``,
RFC 5465 §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command
from pillarbox.proto.imap.commands.fetch import FetchItem


@dataclass(frozen=True, slots=True)
class NotifyEvent:
    """One event of an event group (RFC 5465 §5): `name` upper-cased ("MESSAGENEW");
    `fetch` holds MessageNew's fetch attributes (RFC 5465 §5.2), else empty."""

    name: str
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """``"(" filter-mailboxes SP events ")"``: `filter` upper-cased ("SELECTED",
    "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE", "MAILBOXES"),
    `mailboxes` the names SUBTREE/MAILBOXES take (as sent), `events` empty for NONE."""

    filter: str
    mailboxes: tuple[str, ...] = ()
    events: tuple[NotifyEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify(Command):
    """NOTIFY SET / NOTIFY NONE (RFC 5465 §3, §8). `groups` is None for NONE."""

    NAME: ClassVar[str] = "NOTIFY"
    groups: tuple[NotifyGroup, ...] | None = None
    status: bool = False
