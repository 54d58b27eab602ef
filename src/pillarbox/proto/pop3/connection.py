"""The POP3 server core: bytes in, command events out (RFC 1939, 2449, 2595, 5034, 6856).

Sans-I/O and standard library only. It owns line framing, command syntax, and which
command each state allows; it raises `RemoteProtocolError` carrying the exact ``-ERR``
line when the client breaks a rule, and the session stays usable (only a flood of bad
commands is fatal). It does not know credentials, the maildrop, message numbers' meaning,
TLS, timeouts or rate limits: those are the server's and the services'.

Theory of operation (RFC 1939 §3)::

    AUTHORIZATION --USER/PASS or AUTH, server calls authenticated()--> TRANSACTION
    AUTHORIZATION --QUIT--> CLOSED               (nothing to commit)
    TRANSACTION   --QUIT--> UPDATE               (server commits DELEs, then closes)

Inside AUTHORIZATION there are three short waits, each a flag rather than a state:
- after USER, the next command may be PASS, which carries that user name; any other
  command forgets it (PASS is valid only immediately after USER, RFC 1939 §7);
- after an `Auth` event the server may call `auth_challenge()`; the next line is then an
  `AuthResponse` (base64, or "*" to cancel), not a command (RFC 5034 §4);
- after an `Stls` event the core hands out nothing until `tls_started()`, which drops any
  plaintext pipelined behind STLS (RFC 2595 §4, as RFC 3207 §4.2 does for SMTP).

Pipelining (RFC 2449 §6.6): every complete buffered line is a command; events come out
one by one in order, and the server answers each before asking for the next.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

from pillarbox.proto.buffer import LineTooLong, ReceiveBuffer
from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.pop3 import responses
from pillarbox.proto.pop3.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    Capa,
    ConnectionClosed,
    Dele,
    Event,
    List,
    NeedData,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
    Utf8,
)


class State(enum.Enum):
    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"  # QUIT from TRANSACTION: the server commits, then closes
    CLOSED = "CLOSED"  # QUIT from AUTHORIZATION


@dataclass(frozen=True, slots=True)
class Limits:
    # RFC 2449 §4 allows command lines of 255 octets; AUTH PLAIN initial responses with
    # long passwords need more (RFC 5034 §4 lifts the limit for them), hence 512.
    max_line_length: int = 512
    # After this many refused commands the connection is closed: a client that only
    # sends garbage is not a mail client.
    max_bad_commands: int = 30


_NUMBER = re.compile(rb"[0-9]{1,9}")
_MECHANISM = re.compile(rb"[A-Za-z0-9_-]{1,20}")


def _err(text: str, *, fatal: bool = False, code: str | None = None) -> RemoteProtocolError:
    return RemoteProtocolError(text, responses.err(text, code), fatal=fatal)


def _no_args(name: str, rest: bytes) -> None:
    if rest.strip(b" "):
        raise _err(f"Syntax: {name} takes no argument")


def _msg_number(token: bytes, *, zero_ok: bool = False) -> int:
    if not _NUMBER.fullmatch(token):
        raise _err("Invalid message number")
    value = int(token)
    if value == 0 and not zero_ok:
        raise _err("Invalid message number")
    return value


def _text(data: bytes, what: str) -> str:
    # RFC 6856 §2: user names and passwords may be UTF-8 (we always accept it).
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _err(f"{what} is not valid UTF-8") from None


def _b64(data: bytes) -> bytes:
    if data == b"=":  # RFC 5034 §4: "=" is an empty initial response
        return b""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _err("Invalid base64 data") from None


def _optional_msg(name: str, rest: bytes) -> int | None:
    args = rest.split()
    if not args:
        return None
    if len(args) > 1:
        raise _err(f"Syntax: {name} [msg]")
    return _msg_number(args[0])


def _one_msg(name: str, rest: bytes) -> int:
    args = rest.split()
    if len(args) != 1:
        raise _err(f"Syntax: {name} msg")
    return _msg_number(args[0])


_AUTHZ = frozenset({State.AUTHORIZATION})
_TRANS = frozenset({State.TRANSACTION})
_BOTH = frozenset({State.AUTHORIZATION, State.TRANSACTION})


class ServerConnection:
    """One POP3 server connection's protocol state. See the module docstring."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        tls_active: bool = False,
        stls_available: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self._buffer = ReceiveBuffer(self.limits.max_line_length)
        self.state = State.AUTHORIZATION
        self.tls_active = tls_active
        self.stls_available = stls_available and not tls_active
        self.utf8 = False  # RFC 6856 §2 UTF-8 mode
        self.bad_commands = 0
        self._eof = False
        self._user: str | None = None  # name given by USER, waiting for PASS
        self._awaiting_sasl = False  # the next line is an AUTH response
        self._awaiting_tls = False  # STLS accepted; nothing until tls_started()
        self._handlers: dict[bytes, tuple[frozenset[State], Callable[[bytes], Event]]] = {
            b"USER": (_AUTHZ, self._user_cmd),
            b"PASS": (_AUTHZ, self._pass_cmd),
            b"AUTH": (_AUTHZ, self._auth_cmd),
            b"STLS": (_AUTHZ, self._stls_cmd),
            b"UTF8": (_AUTHZ, self._utf8_cmd),
            b"CAPA": (_BOTH, lambda rest: self._simple("CAPA", rest, Capa())),
            b"QUIT": (_BOTH, self._quit_cmd),
            b"STAT": (_TRANS, lambda rest: self._simple("STAT", rest, Stat())),
            b"NOOP": (_TRANS, lambda rest: self._simple("NOOP", rest, Noop())),
            b"RSET": (_TRANS, lambda rest: self._simple("RSET", rest, Rset())),
            b"LIST": (_TRANS, lambda rest: List(_optional_msg("LIST", rest))),
            b"UIDL": (_TRANS, lambda rest: Uidl(_optional_msg("UIDL", rest))),
            b"RETR": (_TRANS, lambda rest: Retr(_one_msg("RETR", rest))),
            b"DELE": (_TRANS, lambda rest: Dele(_one_msg("DELE", rest))),
            b"TOP": (_TRANS, self._top_cmd),
        }

    # --- input --------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means EOF."""
        if self._eof:
            if data:
                raise LocalProtocolError("data received after EOF")
            return
        if not data:
            self._eof = True
            return
        self._buffer.feed(data)

    def next_event(self) -> Event | NeedData:
        """The next event, NEED_DATA, or `RemoteProtocolError` with the ``-ERR`` to send."""
        if self.state in (State.UPDATE, State.CLOSED) or self._awaiting_tls:
            return ConnectionClosed() if self._eof else NEED_DATA
        try:
            line = self._buffer.read_line()
        except LineTooLong:
            self._awaiting_sasl = False
            raise self._bad(_err("Line too long")) from None
        if line is None:
            return ConnectionClosed() if self._eof else NEED_DATA
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if self._awaiting_sasl:
            self._awaiting_sasl = False
            return self._sasl_line(line)
        try:
            return self._command(line)
        except RemoteProtocolError as exc:
            raise self._bad(exc) from None

    def _bad(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self.bad_commands += 1
        if self.bad_commands >= self.limits.max_bad_commands:
            self.state = State.CLOSED
            return _err("Too many bad commands, closing connection", fatal=True)
        return exc

    def _sasl_line(self, line: bytes) -> AuthResponse:
        if line.strip() == b"*":
            return AuthResponse(b"", cancelled=True)  # RFC 5034 §4: server answers -ERR
        try:
            return AuthResponse(_b64(line.strip()))
        except RemoteProtocolError as exc:
            raise self._bad(exc) from None

    def _command(self, line: bytes) -> Event:
        keyword, _, rest = line.partition(b" ")
        entry = self._handlers.get(keyword.upper())
        user = self._user
        self._user = None  # PASS must come immediately after USER (RFC 1939 §7)
        if entry is None:
            raise _err("Unknown command")
        allowed, handler = entry
        if self.state not in allowed:
            raise _err(f"{keyword.upper().decode('ascii')} is not valid in this state")
        if keyword.upper() == b"PASS":
            self._user = user
        return handler(rest)

    # --- command parsers ------------------------------------------------------------

    @staticmethod
    def _simple(name: str, rest: bytes, event: Event) -> Event:
        _no_args(name, rest)
        return event

    def _user_cmd(self, rest: bytes) -> Event:
        name = rest.strip(b" ")
        if not name:
            raise _err("Syntax: USER name")
        event = User(_text(name, "User name"))
        self._user = event.name
        return event

    def _pass_cmd(self, rest: bytes) -> Event:
        user, self._user = self._user, None
        if user is None:
            raise _err("Send USER first")
        return Pass(user, _text(rest, "Password"))

    def _auth_cmd(self, rest: bytes) -> Event:
        args = rest.split()
        if not args or len(args) > 2 or not _MECHANISM.fullmatch(args[0]):
            raise _err("Syntax: AUTH mechanism [initial-response]")
        initial = _b64(args[1]) if len(args) == 2 else None
        return Auth(args[0].upper().decode("ascii"), initial)

    def _stls_cmd(self, rest: bytes) -> Event:
        _no_args("STLS", rest)
        if self.tls_active:
            raise _err("Command not permitted when TLS active")  # RFC 2595 §4
        if not self.stls_available:
            raise _err("TLS is not available")
        self._awaiting_tls = True
        return Stls()

    def _utf8_cmd(self, rest: bytes) -> Event:
        _no_args("UTF8", rest)
        self.utf8 = True
        return Utf8()

    def _quit_cmd(self, rest: bytes) -> Event:
        _no_args("QUIT", rest)
        # RFC 1939 §6: QUIT from TRANSACTION enters UPDATE; from AUTHORIZATION it just ends.
        self.state = State.UPDATE if self.state is State.TRANSACTION else State.CLOSED
        return Quit()

    def _top_cmd(self, rest: bytes) -> Event:
        args = rest.split()
        if len(args) != 2:
            raise _err("Syntax: TOP msg n")
        msg = _msg_number(args[0])
        if not _NUMBER.fullmatch(args[1]):
            raise _err("Invalid number of lines")
        return Top(msg, int(args[1]))

    # --- the server tells the core what it did ----------------------------------------

    def authenticated(self) -> None:
        """Login succeeded and the maildrop is locked: enter TRANSACTION (RFC 1939 §4)."""
        if self.state is not State.AUTHORIZATION:
            raise LocalProtocolError(f"authenticated() in state {self.state.value}")
        self.state = State.TRANSACTION
        self._user = None

    def auth_challenge(self, challenge: bytes = b"") -> bytes:
        """Bytes of a "+ base64" challenge; the next line becomes an `AuthResponse`.

        Valid right after an `Auth` event, or after an `AuthResponse` for a multi-step
        mechanism.
        """
        if self.state is not State.AUTHORIZATION:
            raise LocalProtocolError("auth_challenge() outside AUTHORIZATION")
        self._awaiting_sasl = True
        return responses.auth_challenge(challenge)

    def tls_started(self) -> None:
        """The TLS handshake after STLS succeeded: forget everything said in plaintext."""
        if not self._awaiting_tls:
            raise LocalProtocolError("tls_started() without an accepted STLS")
        self._awaiting_tls = False
        self._buffer.clear()  # RFC 2595 §4 / RFC 3207 §4.2: no plaintext survives
        self.tls_active = True
        self.stls_available = False
        self._user = None
