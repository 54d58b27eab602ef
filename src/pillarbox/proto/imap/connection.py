"""`ServerConnection`: the IMAP server side as a sans-I/O state machine.

Theory of operation
-------------------
Bytes go in with `receive_data` (``b""`` is EOF); `next_event` frames one command at a time
and returns it as a `commands` dataclass, or `NEED_DATA`, or `ConnectionClosed`. Framing
(RFC 9051 §2.2, §4.3, §7.5; RFC 7888) reads a CRLF line (a bare LF is tolerated); if the
line ends with a literal announcement ``{n}``, ``{n+}`` or ``~{n}`` the core checks the
literal against the `Limits` and the session state, then

- for a synchronising ``{n}`` returns `ContinuationNeeded(tag, n)` (the server sends
  ``+ Ready``), then reads exactly n bytes on the next calls;
- for a non-synchronising ``{n+}`` reads the n bytes straight away;

and goes on with the next line of the same command, until a line without a literal ends
it. The whole command is then handed to `parser.parse_command`. Commands are only parsed
when the server asks for the next event, so the state seen by a pipelined command is the
one the server set after handling the previous command.

States (RFC 9051 §3): NOT_AUTHENTICATED → AUTHENTICATED → SELECTED ⇄ AUTHENTICATED → LOGOUT.
The core checks, from the first line, whether the command is allowed in the current state
(before any literal is accepted) and refuses it with ``tag BAD``. The server reports the
transitions, since only it knows whether a LOGIN or SELECT succeeded:
`authenticated()`, `selected(read_only)`, `unselected()`, `unauthenticated()` (RFC 8437),
`logged_out()`; plus `start_tls()` after the TLS handshake (drops plaintext pipelined after
STARTTLS, RFC 9051 §6.2.1, RFC 3207 §4.2 class of injection), `compression_started()` after
COMPRESS (hands back the compressed bytes already buffered, RFC 4978 §3), `enabled(names)`
after ENABLE (UTF8=ACCEPT or IMAP4rev2 allow UTF-8 in quoted strings, RFC 6855 §3),
`auth_challenge(data)` for each SASL round trip (the next line becomes an
`AuthenticateResponse`), `idle_accepted()` after IDLE (the next line must be DONE and
becomes `Done`).

Errors: every violation raises `RemoteProtocolError` whose `reply_hint` is the exact reply
(``tag BAD ...`` when a tag could be read, ``* BAD ...`` otherwise, ``tag NO [TOOBIG]``
for a refused synchronising literal, ``* BYE ...`` with `fatal` when the byte stream can no
longer be followed). After a non-fatal error the connection stays usable: the rest of the
bad command is skipped, including the bytes of any non-synchronising literal it announced,
so literal contents are never mistaken for commands.

Must not: do I/O, decide policy (who may log in, what exists), or keep mailbox state.
"""

from __future__ import annotations

import base64
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.parser import (
    KNOWN_COMMANDS,
    ParseError,
    command_name,
    decode_base64,
    parse_command,
    parse_tag,
)

LITERAL_MINUS_MAX: Final = 4096  # RFC 7888 §4: largest non-synchronising literal with LITERAL-


class State(enum.Enum):
    """Connection states (RFC 9051 §3)."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits; every one is enforced before the bytes are held in memory.

    max_line_length: one line of a command, literals excluded (RFC 9051 §4 recommends
        accepting at least 8192 octets).
    max_literal_size: one literal once authenticated; announce it as APPENDLIMIT=n
        (RFC 7889).
    max_unauthenticated_literal_size: one literal before authentication (RFC 9051 §11.1 lets
        servers refuse large literals from unauthenticated clients).
    max_command_size: all lines and literals of one command (several messages with
        MULTIAPPEND).
    max_literals: literals in one command.
    max_nesting_depth: parentheses and NOT/OR nesting.
    max_discard_size: the largest refused non-synchronising literal the core reads and
        drops to stay in sync; beyond it the connection is closed with BYE.
    literal_minus: True when the server announces LITERAL- instead of LITERAL+ (RFC 7888
        §4): non-synchronising literals over 4096 octets are then refused.
    """

    max_line_length: int = 64 * 1024
    max_literal_size: int = 64 * 1024 * 1024
    max_unauthenticated_literal_size: int = 16 * 1024
    max_command_size: int = 128 * 1024 * 1024
    max_literals: int = 1000
    max_nesting_depth: int = 32
    max_discard_size: int = 256 * 1024 * 1024
    literal_minus: bool = False


_ANY: Final = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "ID"})
_NOT_AUTH: Final = _ANY | {"STARTTLS", "AUTHENTICATE", "LOGIN"}
_AUTH_ONLY: Final = frozenset(
    {
        "ENABLE",  # RFC 5161 §3.1: authenticated state only
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "NAMESPACE",
        "STATUS",
        "APPEND",
        "IDLE",
        "COMPRESS",  # RFC 4978 §5: command-auth
        "UNAUTHENTICATE",  # RFC 8437 §4: command-auth and command-select
        "NOTIFY",  # RFC 5465 §8: command-auth (so the selected state too)
        "GETQUOTA",  # RFC 9208 §9: command-auth
        "GETQUOTAROOT",
        "SETQUOTA",
    }
)
_SELECTED_ONLY: Final = frozenset(
    {
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "UID SEARCH",
        "UID FETCH",
        "UID STORE",
        "UID COPY",
        "UID MOVE",
        "UID EXPUNGE",
        "SORT",  # RFC 5256 §4
        "UID SORT",
        "THREAD",
        "UID THREAD",
        "REPLACE",  # RFC 8508 §3.3
        "UID REPLACE",
        "CANCELUPDATE",  # RFC 5267 §5: command-select
    }
)
ALLOWED_COMMANDS: Final[dict[State, frozenset[str]]] = {
    State.NOT_AUTHENTICATED: _NOT_AUTH,
    State.AUTHENTICATED: _ANY | _AUTH_ONLY,
    State.SELECTED: _ANY | (_AUTH_ONLY - {"ENABLE"}) | _SELECTED_ONLY,
    State.LOGOUT: frozenset(),
}
"""Which command names each state accepts (RFC 9051 §6.1-§6.4)."""

# ~{n} / {n} / {n+} at the very end of a line (RFC 9051 §9 literal, RFC 7888, RFC 3516).
_LITERAL_RE: Final = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\Z")
_TAIL_KEEP: Final = 64  # bytes of a skipped over-long line kept to spot a literal at its end


@dataclass(frozen=True, slots=True)
class _LiteralAnnouncement:
    size: int
    sync: bool
    binary: bool


def _literal_suffix(content: bytes) -> _LiteralAnnouncement | None:
    m = _LITERAL_RE.search(content, max(0, len(content) - _TAIL_KEEP))
    if m is None:
        if _LITERAL_RE.search(content) is None:
            return None
        m = _LITERAL_RE.search(content)
        assert m is not None
    digits = m.group(2)
    # Absurdly long counts are "too big", never converted (int() has a digit limit).
    size = int(digits) if len(digits) <= 20 else 1 << 80
    return _LiteralAnnouncement(size, m.group(3) != b"+", m.group(1) == b"~")


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    return line[:-1]


class _Mode(enum.Enum):
    COMMAND = "command"
    AUTH = "auth"  # the next line answers an AUTHENTICATE challenge
    IDLE = "idle"  # the next line must be DONE


class ServerConnection:
    """The server side of one IMAP connection; see the module docstring."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._state = State.NOT_AUTHENTICATED
        self._buf = bytearray()
        self._scan = 0
        self._eof = False
        self._closed = False
        self._mode = _Mode.COMMAND
        self._mode_tag = ""
        self._last_command: c.Command | None = None
        self.read_only = False
        self.tls_active = False
        self.utf8 = False
        self.enabled_extensions: set[str] = set()
        self._reset_command()
        # skipping the rest of a refused command / an over-long line
        self._discard_left = 0
        self._discarding = False
        self._skipping_line = False
        self._skip_tail = b""

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> State:
        return self._state

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data after EOF")
        self._buf += data

    def next_event(self) -> c.Event | c.NeedData:
        """The next event, `NEED_DATA`, or raise `RemoteProtocolError` (see module doc)."""
        if self._closed or self._state is State.LOGOUT:
            self._closed = True
            return c.ConnectionClosed()
        while True:
            if self._discard_left:
                take = min(len(self._buf), self._discard_left)
                del self._buf[:take]
                self._scan = 0
                self._discard_left -= take
                if self._discard_left:
                    return self._need_data()
                continue
            if self._literal_left:
                take = min(len(self._buf), self._literal_left)
                if take:
                    self._parts.append(bytes(self._buf[:take]))
                    del self._buf[:take]
                    self._scan = 0
                    self._literal_left -= take
                if self._literal_left:
                    return self._need_data()
                continue
            line = self._read_line()
            if line is None:
                return self._need_data()
            if self._mode is _Mode.AUTH:
                return self._auth_line(line)
            if self._mode is _Mode.IDLE:
                return self._idle_line(line)
            if self._discarding:
                self._skip_rest(_strip_eol(line))
                continue
            event = self._command_line(line)
            if event is not None:
                return event

    # --- transitions the server reports ---

    def authenticated(self) -> None:
        """LOGIN or AUTHENTICATE succeeded."""
        self._require(State.NOT_AUTHENTICATED)
        self._mode = _Mode.COMMAND
        self._state = State.AUTHENTICATED

    def selected(self, read_only: bool = False) -> None:
        """SELECT (read_only=False) or EXAMINE (True) succeeded."""
        self._require(State.AUTHENTICATED, State.SELECTED)
        self._state = State.SELECTED
        self.read_only = read_only

    def unselected(self) -> None:
        """CLOSE/UNSELECT done, or a SELECT failed (RFC 9051 §6.3.2 leaves selected state)."""
        self._require(State.AUTHENTICATED, State.SELECTED)
        self._state = State.AUTHENTICATED
        self.read_only = False

    def unauthenticated(self) -> None:
        """UNAUTHENTICATE succeeded (RFC 8437 §3): not authenticated again, with nothing
        ENABLEd; TLS (and compression, below the core) stay as they are."""
        self._require(State.AUTHENTICATED, State.SELECTED)
        self._state = State.NOT_AUTHENTICATED
        self.read_only = False
        self.enabled_extensions.clear()
        self.utf8 = False

    def logged_out(self) -> None:
        """LOGOUT answered (or the server closes): every later event is ConnectionClosed."""
        self._state = State.LOGOUT

    def start_tls(self) -> None:
        """TLS is now active: drop everything received in plaintext after STARTTLS."""
        self._require(State.NOT_AUTHENTICATED)
        self._buf.clear()
        self._scan = 0
        self._reset_command()
        self._discard_left = 0
        self._discarding = False
        self._skipping_line = False
        self.tls_active = True

    def compression_started(self) -> bytes:
        """COMPRESS succeeded (RFC 4978 §3): return the bytes received after it, which are
        compressed, for the server to inflate and feed back with `receive_data`."""
        self._require(State.AUTHENTICATED, State.SELECTED)
        pending = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        return pending

    def enabled(self, names: Iterable[str]) -> None:
        """Record extensions the server enabled (RFC 5161); some change the syntax."""
        for name in names:
            upper = name.upper()
            self.enabled_extensions.add(upper)
            if upper in ("UTF8=ACCEPT", "IMAP4REV2"):
                self.utf8 = True

    def auth_challenge(self, challenge: bytes) -> bytes:
        """Bytes of a SASL challenge ``+ base64``; the next line is an AuthenticateResponse.

        Call only right after an `Authenticate` or `AuthenticateResponse` event.
        """
        if not isinstance(self._last_command, c.Authenticate) and self._mode_tag == "":
            raise LocalProtocolError("auth_challenge outside AUTHENTICATE")
        if isinstance(self._last_command, c.Authenticate):
            self._mode_tag = self._last_command.tag
        self._mode = _Mode.AUTH
        return b"+ " + base64.b64encode(challenge) + b"\r\n"

    def idle_accepted(self, text: bytes = b"idling") -> bytes:
        """Bytes of ``+ idling``; the next line must be DONE (RFC 2177 §3)."""
        if not isinstance(self._last_command, c.Idle):
            raise LocalProtocolError("idle_accepted outside IDLE")
        self._mode = _Mode.IDLE
        self._mode_tag = self._last_command.tag
        self._last_command = None
        return b"+ " + text + b"\r\n"

    # ------------------------------------------------------------------ internals

    def _require(self, *states: State) -> None:
        if self._state not in states:
            raise LocalProtocolError(f"not allowed in state {self._state.value}")

    def _need_data(self) -> c.NeedData | c.ConnectionClosed:
        if self._eof:
            self._closed = True
            return c.ConnectionClosed()
        return c.NEED_DATA

    def _reset_command(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._literals = 0
        self._tag: str | None = None
        self._literal_left = 0

    def _error(
        self, text: str, *, tag: str | None = None, fatal: bool = False
    ) -> RemoteProtocolError:
        if fatal:
            self._closed = True
            return RemoteProtocolError(text, b"* BYE " + text.encode() + b"\r\n", fatal=True)
        prefix = b"*" if tag is None else tag.encode()
        return RemoteProtocolError(text, prefix + b" BAD " + text.encode() + b"\r\n")

    def _read_line(self) -> bytes | None:
        """One line with its LF, None if incomplete; enforces max_line_length.

        An over-long line is dropped as soon as it is proven too long (not held in memory);
        its last bytes are kept so a literal it announces can still be skipped.
        """
        max_line = self.limits.max_line_length
        while True:
            idx = self._buf.find(b"\n", self._scan)
            if idx < 0:
                if self._skipping_line:
                    self._skip_tail = (self._skip_tail + bytes(self._buf))[-_TAIL_KEEP:]
                    self._buf.clear()
                    self._scan = 0
                    return None
                if len(self._buf) > max_line:
                    tag = self._tag if self._parts else parse_tag(bytes(self._buf[:256]))
                    self._skipping_line = True
                    self._skip_tail = bytes(self._buf[-_TAIL_KEEP:])
                    self._buf.clear()
                    self._scan = 0
                    self._reset_command()
                    self._mode = _Mode.COMMAND
                    raise self._error("Line too long", tag=tag)
                self._scan = len(self._buf)
                return None
            line = bytes(self._buf[: idx + 1])
            del self._buf[: idx + 1]
            self._scan = 0
            if self._skipping_line:
                self._skipping_line = False
                tail = (self._skip_tail + line)[-_TAIL_KEEP - 2 :]
                self._skip_tail = b""
                self._skip_rest(_strip_eol(tail))
                continue
            if len(line) > max_line:
                tag = self._tag if self._parts else parse_tag(line[:256])
                self._reset_command()
                self._mode = _Mode.COMMAND
                self._skip_rest(_strip_eol(line[-_TAIL_KEEP - 2 :]))
                raise self._error("Line too long", tag=tag)
            return line

    def _skip_rest(self, content: bytes) -> None:
        """`content` is a line of a refused command: follow its literal, if any.

        A non-synchronising literal's bytes are discarded and the command continues on the
        line after it; a synchronising one ends the command (the client waits for "+",
        which never comes, and sees our tagged reply instead); no literal ends it.
        """
        lit = _literal_suffix(content)
        if lit is not None and not lit.sync:
            if lit.size > self.limits.max_discard_size:
                raise self._error("Literal too large", fatal=True)
            self._discard_left = lit.size
            self._discarding = True
        else:
            self._discarding = False

    def _refuse(
        self, reply: RemoteProtocolError, lit: _LiteralAnnouncement | None
    ) -> RemoteProtocolError:
        """Abandon the current command whose last line announced `lit`."""
        self._reset_command()
        if lit is not None and not lit.sync:
            if lit.size > self.limits.max_discard_size:
                return self._error("[TOOBIG] Literal too large", fatal=True)
            self._discard_left = lit.size
            self._discarding = True
        return reply

    def _command_line(self, line: bytes) -> c.Event | None:
        content = _strip_eol(line)
        lit = _literal_suffix(content)
        if not self._parts:
            if not content:
                return None  # stray empty line: ignored
            tag = parse_tag(content)
            self._tag = tag
            if tag is None:
                raise self._refuse(self._error("Invalid tag"), lit)
            name = command_name(content)
            if name is None or name not in KNOWN_COMMANDS:
                raise self._refuse(self._error("Unknown command", tag=tag), lit)
            if name not in ALLOWED_COMMANDS[self._state] or (
                name == "STARTTLS" and self.tls_active
            ):
                raise self._refuse(self._error(self._state_error(name), tag=tag), lit)
        tag = self._tag
        assert tag is not None
        self._size += len(content) + 2
        if lit is None:
            self._parts.append(content)
            if self._size > self.limits.max_command_size:
                raise self._refuse(self._error("Command too long", tag=tag), None)
            data = b"".join(self._parts)
            self._reset_command()
            try:
                command = parse_command(
                    data, utf8=self.utf8, max_depth=self.limits.max_nesting_depth
                )
            except ParseError as e:
                raise self._error(str(e), tag=tag) from None
            self._last_command = command
            self._mode_tag = ""
            return command
        self._parts.append(content + b"\r\n")
        self._literals += 1
        if self._literals > self.limits.max_literals:
            raise self._refuse(self._error("Too many literals", tag=tag), lit)
        limit = (
            self.limits.max_unauthenticated_literal_size
            if self._state is State.NOT_AUTHENTICATED
            else self.limits.max_literal_size
        )
        too_big = lit.size > limit or self._size + lit.size > self.limits.max_command_size
        if not lit.sync and self.limits.literal_minus and lit.size > LITERAL_MINUS_MAX:
            too_big = True
        if too_big:
            if lit.sync:
                # RFC 9051 §7.1 TOOBIG, RFC 7889 §4: refuse instead of "+"; nothing follows.
                text = b" NO [TOOBIG] Literal too large\r\n"
                err = RemoteProtocolError("literal too large", tag.encode() + text)
                raise self._refuse(err, lit)
            # RFC 7888 §4: a non-synchronising literal over the limit gets BAD [TOOBIG];
            # its octets are already on their way, so they are read and dropped.
            raise self._refuse(self._error("[TOOBIG] Literal too large", tag=tag), lit)
        self._size += lit.size
        self._literal_left = lit.size
        if lit.sync:
            return c.ContinuationNeeded(tag, lit.size)
        return None

    def _state_error(self, name: str) -> str:
        if name == "STARTTLS" and self.tls_active:
            return "TLS is already active"
        if self._state is State.NOT_AUTHENTICATED:
            return "Not authenticated"
        if name in ("LOGIN", "AUTHENTICATE", "STARTTLS"):
            return "Already authenticated"
        if self._state is State.SELECTED and name == "ENABLE":
            return "ENABLE is not allowed in the selected state"
        return "No mailbox selected"

    def _auth_line(self, line: bytes) -> c.Event:
        tag = self._mode_tag
        self._mode = _Mode.COMMAND
        self._last_command = None
        content = _strip_eol(line)
        if content == b"*":
            self._mode_tag = ""
            return c.AuthenticateResponse(tag, b"", cancelled=True)
        try:
            data = decode_base64(content) if content else b""
        except ParseError:
            self._mode_tag = ""
            raise self._error("Invalid base64", tag=tag) from None
        return c.AuthenticateResponse(tag, data)

    def _idle_line(self, line: bytes) -> c.Event:
        tag = self._mode_tag
        self._mode = _Mode.COMMAND
        self._mode_tag = ""
        if _strip_eol(line).upper() == b"DONE":
            return c.Done(tag)
        raise self._error("Expected DONE", tag=tag)
