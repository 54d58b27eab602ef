"""Commands about the session itself rather than a mailbox or its messages.

The any-state commands (RFC 9051 §6.1: CAPABILITY, NOOP, LOGOUT; ID, RFC 2971), the
not-authenticated ones (RFC 9051 §6.2: STARTTLS, AUTHENTICATE with SASL-IR RFC 4959, LOGIN)
and the two authenticated commands that change how the connection behaves rather than touch
a mailbox: ENABLE (RFC 5161) and IDLE (RFC 2177). Several of them need a call back into the
connection (`conn.start_tls()`, `conn.auth_challenge()`, `conn.enabled()`,
`conn.idle_accepted()`), which their docstrings name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pillarbox.proto.imap.commands.base import Command

# ----- any state (RFC 9051 §6.1) -----


@dataclass(frozen=True, slots=True)
class Capability(Command):
    """CAPABILITY."""

    NAME: ClassVar[str] = "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    """NOOP: the server sends pending untagged updates."""

    NAME: ClassVar[str] = "NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """LOGOUT: the server sends ``* BYE``, tagged OK, then calls `conn.logged_out()`."""

    NAME: ClassVar[str] = "LOGOUT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (RFC 2971): `parameters` is None for ``ID NIL``; values may be None (NIL)."""

    NAME: ClassVar[str] = "ID"
    parameters: tuple[tuple[str, str | None], ...] | None = None


# ----- not authenticated (RFC 9051 §6.2) -----


@dataclass(frozen=True, slots=True)
class StartTls(Command):
    """STARTTLS: answer OK, start TLS, then call `conn.start_tls()` (drops buffered plaintext)."""

    NAME: ClassVar[str] = "STARTTLS"


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 9051 §6.2.2, SASL-IR RFC 4959).

    `mechanism` is upper-cased. `initial_response` is the decoded SASL-IR (``b""`` for "="),
    None when absent. For each further challenge the server calls `conn.auth_challenge(...)`
    and gets the client's reply as an `AuthenticateResponse` event.
    """

    NAME: ClassVar[str] = "AUTHENTICATE"
    mechanism: str = ""
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True)
class Login(Command):
    """LOGIN userid password (RFC 9051 §6.2.3); both decoded as UTF-8."""

    NAME: ClassVar[str] = "LOGIN"
    username: str = ""
    password: str = field(default="", repr=False)


# ----- authenticated, about the session (RFC 9051 §6.3) -----


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """ENABLE cap... (RFC 5161); names upper-cased. Afterwards the server calls
    `conn.enabled(...)` with the ones it did enable (UTF8=ACCEPT and IMAP4REV2 change parsing).
    """

    NAME: ClassVar[str] = "ENABLE"
    capabilities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """IDLE (RFC 2177): the server calls `conn.idle_accepted()` (sends "+ idling"), then
    sends untagged updates until a `Done` event arrives.
    """

    NAME: ClassVar[str] = "IDLE"
