"""What every command family shares: the `Command` base, the non-command events, generic values.

The connection hands these out besides commands: `NEED_DATA`, `ContinuationNeeded` for a
synchronising literal (RFC 9051 §4.3, §7.5), `AuthenticateResponse` inside an AUTHENTICATE
exchange (RFC 9051 §6.2.2), `Done` ending IDLE (RFC 2177) and `ConnectionClosed`. The
values here are the ones several families use: extension parameters (RFC 4466 §2.1), the
QRESYNC select parameter (RFC 7162 §3.2.5) and the immutable defaults of the commands that
take a message set or search criteria. Plain data: no parsing, no I/O, no policy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, TypeAlias

from pillarbox.model.search import SearchAnd, SequenceSet

# ---------------------------------------------------------------------------------------------
# Non-command events
# ---------------------------------------------------------------------------------------------


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Sentinel.NEED_DATA
"""Returned by `ServerConnection.next_event()` when it needs more bytes (`receive_data`)."""

NeedData: TypeAlias = Literal[_Sentinel.NEED_DATA]


@dataclass(frozen=True, slots=True)
class ContinuationNeeded:
    """The client announced a synchronising literal ``{size}`` and waits for "+".

    The server must send a continuation request (``responses.continuation("Ready")``) and then
    keep calling `next_event()`: the core reads exactly `size` bytes next. (RFC 9051 §4.3,
    §7.5.) Literals that are refused (too big, wrong state) never produce this event: the
    core raises `RemoteProtocolError` with the tagged NO/BAD instead, which tells the client
    not to send the literal.
    """

    tag: str
    size: int


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    """One client line of an AUTHENTICATE exchange (RFC 9051 §6.2.2).

    Produced only after the server called `conn.auth_challenge(...)`. `data` is the
    base64-decoded response (``b""`` for an empty line); `cancelled` is True when the client
    sent "*", and the server must then answer ``tag BAD`` (RFC 9051 §6.2.2). `tag` is the tag
    of the AUTHENTICATE command.
    """

    tag: str
    data: bytes
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """The client ended IDLE with "DONE" (RFC 2177, RFC 9051 §6.3.13).

    Produced only after the server called `conn.idle_accepted()`. `tag` is the IDLE tag: the
    server now sends ``tag OK IDLE terminated``.
    """

    tag: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``) or the session reached LOGOUT.

    Bytes of an unfinished command at EOF are dropped: a command is only acted on when its
    final CRLF arrived.
    """


# ---------------------------------------------------------------------------------------------
# Values used inside commands of several families
# ---------------------------------------------------------------------------------------------


ParamValue: TypeAlias = "str | tuple[ParamValue, ...]"
"""A generic extension parameter value: an atom/number/string, or a parenthesised list."""


@dataclass(frozen=True, slots=True)
class QResync:
    """The QRESYNC select parameter (RFC 7162 §3.2.5), decoded from the generic parameters.

    ``(QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]]))``.
    """

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


# Immutable defaults shared by every command that has no message set / criteria yet.
NO_MESSAGES: Final = SequenceSet(())
NO_CRITERIA: Final = SearchAnd(())

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command event; `NAME` is the command word (for logs and replies)."""

    NAME: ClassVar[str] = ""
    tag: str


Event: TypeAlias = Command | ContinuationNeeded | AuthenticateResponse | Done | ConnectionClosed
"""Everything `ServerConnection.next_event()` returns besides `NEED_DATA`."""
