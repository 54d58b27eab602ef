"""Failures of an IMAP command and the one table that turns them into tagged replies.

A handler raises `BadCommand` (syntactically fine, arguments unusable: tagged BAD) or
`CommandNo` (a refusal with an optional response code: tagged NO [code]); services raise
their own errors, which `reply_for` maps to RFC 9051 §7.1 response codes. Anything else
is a bug: the session logs it and answers ``NO [SERVERBUG]`` without its text.

Must not: import the session or any handler (every handler imports this).
"""

from __future__ import annotations

from pillarbox.rules.flags import BadFlag, TooManyKeywords
from pillarbox.services.errors import (
    UNAVAILABLE_TEXT,
    AuthFailed,
    LimitReached,
    OverQuota,
    Rejected,
    StorageUnavailable,
    TempFailure,
)
from pillarbox.services.fetching import UnknownEncoding
from pillarbox.services.mailbox import (
    InvalidMailboxName,
    MailboxExists,
    MailboxNotAllowed,
    NoSuchMailbox,
)
from pillarbox.services.view import MessageSetError


class BadCommand(Exception):
    """The command is syntactically fine but its arguments are unusable: tagged BAD."""


class CommandNo(Exception):
    """A refusal with an optional response code: tagged NO [code] text."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class WriteStalled(ConnectionError):
    """The client did not read our output for `idle_timeout`; the connection is gone."""


# Client errors the services find in an otherwise well-formed command: tagged BAD.
BAD_ARGUMENTS: tuple[type[Exception], ...] = (MessageSetError, BadFlag)


def reply_for(exc: Exception) -> tuple[str, str | None, str]:
    """(status, response code, text) for a service error: the one table (RFC 9051 §7.1)."""
    if isinstance(exc, (BadCommand, *BAD_ARGUMENTS)):
        return "BAD", None, str(exc)
    if isinstance(exc, CommandNo):
        return "NO", exc.code, exc.text
    if isinstance(exc, AuthFailed):
        return "NO", "AUTHENTICATIONFAILED", "Invalid credentials"
    if isinstance(exc, NoSuchMailbox):
        return "NO", "NONEXISTENT", exc.text
    if isinstance(exc, MailboxExists):
        return "NO", "ALREADYEXISTS", exc.text
    if isinstance(exc, InvalidMailboxName | MailboxNotAllowed):
        return "NO", "CANNOT", exc.text
    if isinstance(exc, UnknownEncoding):
        return "NO", "UNKNOWN-CTE", exc.text  # RFC 3516 §4.3
    if isinstance(exc, OverQuota):
        return "NO", "OVERQUOTA", exc.text
    if isinstance(exc, LimitReached):
        return "NO", "LIMIT", exc.text  # RFC 9051 §7.1
    if isinstance(exc, TooManyKeywords):
        return "NO", "LIMIT", str(exc)
    if isinstance(exc, TempFailure):
        return "NO", "UNAVAILABLE", exc.text
    if isinstance(exc, StorageUnavailable):
        return "NO", "UNAVAILABLE", UNAVAILABLE_TEXT  # RFC 9051 §7.1
    if isinstance(exc, Rejected):
        return "NO", None, exc.text
    return "NO", "SERVERBUG", "Internal error"


# Everything `reply_for` knows; anything else is logged as a bug.
KNOWN_FAILURES: tuple[type[Exception], ...] = (
    BadCommand,
    CommandNo,
    AuthFailed,
    Rejected,
    TempFailure,
    StorageUnavailable,
    TooManyKeywords,
    *BAD_ARGUMENTS,
)
