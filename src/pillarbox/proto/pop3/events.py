"""Events of the POP3 server core: one frozen dataclass per command, plus `NEED_DATA`.

This module is the vocabulary shared by `pillarbox.proto.pop3.connection` (which produces
these) and `pillarbox.server.pop3` (which acts on them). Plain data: no parsing, no I/O,
no policy; standard library only.

Message numbers are syntactically valid (a positive decimal number) but *not* checked
against the maildrop: whether message 7 exists or is deleted is the session's maildrop's
business (`pillarbox.services.pop`), not the wire core's (RFC 1939 §5).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = _Sentinel.NEED_DATA
"""Returned by `ServerConnection.next_event()` when it needs more bytes."""

NeedData: TypeAlias = Literal[_Sentinel.NEED_DATA]


# --- AUTHORIZATION state ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """USER name (RFC 1939 §7). The name is everything after "USER ", UTF-8 decoded."""

    name: str


@dataclass(frozen=True, slots=True)
class Pass:
    """PASS string (RFC 1939 §7), carrying the name of the USER command just before it.

    The password is the rest of the line after "PASS " verbatim, spaces included: RFC 1939
    §7 lets a server treat spaces as part of the password, and real passwords have them.
    """

    user: str
    password: str

    def __repr__(self) -> str:  # never log a password by accident
        return f"Pass(user={self.user!r}, password=<redacted>)"


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH mechanism [initial-response] (RFC 5034 §4).

    `mechanism` is upper-cased. `initial_response` is the base64-decoded initial response
    (b"" for "="), or None when the client sent none: the server then sends a challenge
    with `conn.auth_challenge(...)` and the next event is `AuthResponse`.
    """

    mechanism: str
    initial_response: bytes | None = None

    def __repr__(self) -> str:
        shown = None if self.initial_response is None else "<redacted>"
        return f"Auth(mechanism={self.mechanism!r}, initial_response={shown})"


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A client line of an AUTH exchange, base64-decoded; `cancelled` for "*" (RFC 5034 §4)."""

    data: bytes
    cancelled: bool = False

    def __repr__(self) -> str:
        return f"AuthResponse(data=<redacted>, cancelled={self.cancelled})"


@dataclass(frozen=True, slots=True)
class Stls:
    """STLS (RFC 2595 §4). Only produced when TLS is available and not yet active."""


@dataclass(frozen=True, slots=True)
class Utf8:
    """UTF8 (RFC 6856 §2): enter UTF-8 mode; only before authentication."""


# --- both states ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capa:
    """CAPA (RFC 2449 §5)."""


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 1939 §6, §4). From TRANSACTION the core is now in UPDATE state."""


# --- TRANSACTION state ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stat:
    """STAT (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class List:
    """LIST [msg] (RFC 1939 §5)."""

    msg: int | None = None


@dataclass(frozen=True, slots=True)
class Retr:
    """RETR msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Dele:
    """DELE msg (RFC 1939 §5)."""

    msg: int


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Rset:
    """RSET (RFC 1939 §5)."""


@dataclass(frozen=True, slots=True)
class Top:
    """TOP msg n (RFC 1939 §7): the header and the first `lines` lines of the body."""

    msg: int
    lines: int


@dataclass(frozen=True, slots=True)
class Uidl:
    """UIDL [msg] (RFC 1939 §7)."""

    msg: int | None = None


# --- not a command --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (EOF) after every complete command was delivered."""


Event: TypeAlias = (
    User
    | Pass
    | Auth
    | AuthResponse
    | Stls
    | Utf8
    | Capa
    | Quit
    | Stat
    | List
    | Retr
    | Dele
    | Noop
    | Rset
    | Top
    | Uidl
    | ConnectionClosed
)
