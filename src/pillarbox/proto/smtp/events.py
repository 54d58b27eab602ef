"""Events of the SMTP server core: one frozen dataclass per command, plus the body events.

This module owns the vocabulary shared by `pillarbox.proto.smtp.server` (which produces
these) and `pillarbox.server.smtp` (which consumes them). It is plain data: no parsing,
no I/O, no policy.

Conventions:
- Addresses are `str` as the client spelled them, with the source route removed
  (RFC 5321 §4.1.1.3 says to ignore it) and a quoted local part unquoted when its content
  is a plain dot-string (``"alice"@x`` is ``alice@x``). The null reverse-path is ``""``.
  Case is kept: lower-casing is policy (`services`), not grammar.
- ESMTP parameter values stay as given (``ENVID`` and ``ORCPT`` keep their xtext), keywords
  are matched case-insensitively and their values validated against their RFC grammar.
- `BodyChunk.data` is message content after dot-unstuffing (DATA) or as sent (BDAT); the
  body of one message arrives as many chunks and is never assembled by the core.
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


@dataclass(frozen=True, slots=True)
class Hello:
    """HELO (`extended` False) or EHLO (True); RFC 5321 §4.1.1.1. Resets the transaction."""

    domain: str
    extended: bool


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS (RFC 3207). Reply 220, do the handshake, then call `conn.tls_started()`."""


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH mechanism [initial-response] (RFC 4954 §4).

    `mechanism` is upper-cased. `initial_response` is the base64-decoded initial response,
    ``b""`` for "=", None when absent.
    """

    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """One client line of an AUTH exchange, after the server sent a 334 challenge.

    `data` is base64-decoded; `cancelled` is True when the client sent "*" (RFC 4954 §4:
    the server must then reply 501).
    """

    data: bytes
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM:<reverse-path> [params] (RFC 5321 §4.1.1.2).

    `size` is SIZE (RFC 1870), `body` is "7BIT" or "8BITMIME" (RFC 6152), `smtputf8` the
    SMTPUTF8 flag (RFC 6531), `ret`/`envid` the DSN parameters (RFC 3461 §4.3, §4.4),
    `auth` the AUTH= parameter (RFC 4954 §5), kept as given.
    """

    address: str
    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO:<forward-path> [params] (RFC 5321 §4.1.1.3).

    `notify` is the RFC 3461 §4.1 NOTIFY value upper-cased as given ("SUCCESS,DELAY",
    "NEVER"), `orcpt` the §4.2 ORCPT value as given ("rfc822;a@b").
    """

    address: str
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class DataStart:
    """DATA (RFC 5321 §4.1.1.4). Reply 354 to receive the body, or refuse."""


@dataclass(frozen=True, slots=True)
class BodyChunk:
    """A piece of message content (DATA after unstuffing, or BDAT octets). No reply."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfData:
    """The message is complete (CRLF.CRLF, or the end of BDAT LAST). Reply with the
    final 250 only once the message is durable, or 4xx/5xx."""

    size: int


@dataclass(frozen=True, slots=True)
class Bdat:
    """BDAT size [LAST] (RFC 3030 §2): `size` octets of content follow as BodyChunks, then
    `ChunkEnd` (reply 250) or, if `last`, `EndOfData`. No reply to this event itself."""

    size: int
    last: bool


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    """A non-LAST BDAT chunk has been read completely; reply 250 (RFC 3030 §2)."""

    size: int


@dataclass(frozen=True, slots=True)
class Reset:
    """RSET (RFC 5321 §4.1.1.5); the core has already dropped the transaction."""


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP (RFC 5321 §4.1.1.9)."""


@dataclass(frozen=True, slots=True)
class Vrfy:
    """VRFY (RFC 5321 §4.1.1.6); we answer 252 without verifying (§3.5.3)."""

    argument: str


@dataclass(frozen=True, slots=True)
class Help:
    """HELP [topic] (RFC 5321 §4.1.1.8)."""

    topic: str


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT (RFC 5321 §4.1.1.10); reply 221 and close."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (`receive_data(b"")`); any transaction is void."""


Event: TypeAlias = (
    Hello
    | StartTls
    | Auth
    | AuthResponse
    | MailFrom
    | RcptTo
    | DataStart
    | BodyChunk
    | EndOfData
    | Bdat
    | ChunkEnd
    | Reset
    | Noop
    | Vrfy
    | Help
    | Quit
    | ConnectionClosed
)
