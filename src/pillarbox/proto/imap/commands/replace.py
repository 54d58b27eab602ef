"""REPLACE and UID REPLACE (RFC 8508): one new message in place of an old one.

A draft saved again is APPEND, STORE \\Deleted and EXPUNGE in three commands that can fail
half-way (and EXPUNGE takes every \\Deleted message with it); REPLACE does the same in
one atomic command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from pillarbox.proto.imap.commands.base import Command
from pillarbox.proto.imap.commands.messages import AppendMessage

_NO_MESSAGE: Final = AppendMessage((), None, b"")


@dataclass(frozen=True, slots=True)
class Replace(Command):
    """REPLACE / UID REPLACE seq-number mailbox append-message (RFC 8508 §3.3, §6).

    `number` is the message sequence number (a UID with `uid`), None for "*"; `mailbox`
    receives `message` (it need not be the selected one, RFC 8508 §3.3).
    """

    NAME: ClassVar[str] = "REPLACE"
    uid: bool = False
    number: int | None = None
    mailbox: str = ""
    message: AppendMessage = _NO_MESSAGE
