"""The SMTP server connection: bytes in, events out, replies to bytes (sans-I/O, after h11).

Theory of operation
-------------------
The caller feeds received bytes with `receive_data` (``b""`` means EOF) and pulls events
with `next_event` until it returns `NEED_DATA`. Every command event must be answered with
exactly one `send(reply)` before the next `next_event` (RFC 2920 pipelining: commands
queue up in the receive buffer and are handed out one at a time, so replies come out in
order; the caller may batch the bytes `send` returns into one write). `BodyChunk` and
`Bdat` take no reply; `ChunkEnd` and `EndOfData` do.

States and what moves between them::

    INITIAL --Hello+250--> READY --MailFrom+250--> MAIL --RcptTo+250--> RCPT
    RCPT --DataStart+354--> DATA --(CRLF.CRLF) EndOfData+reply--> READY
    RCPT|BDAT_WAIT --Bdat--> BDAT --(n octets) ChunkEnd+250--> BDAT_WAIT
                                   --(n octets, LAST) EndOfData+reply--> READY
    READY --StartTls+220--> TLS_PENDING --tls_started()--> INITIAL (RFC 3207 §4.2)
    READY --Auth+334--> AUTH --AuthResponse+334--> AUTH --...+235/5xx--> READY
    any --Quit+221 / fatal error / 421--> CLOSED

Transitions that depend on the server's decision happen in `send`, from the reply code,
so the core never has to guess whether a MAIL or RCPT was accepted. Protocol violations
raise `RemoteProtocolError` whose `reply_hint` is the exact reply; the offending input
is already consumed, so the caller sends the hint and keeps going (unless `fatal`).
An error during a message (too big, bare LF, header too large) is raised when the
message ends, after its last octet is consumed, and the transaction is then void
(`in_transaction` is False): the caller drops whatever it had spooled.

What the core enforces itself (from `Limits`): command line length, message size (SIZE
parameter and actual octets, for DATA and BDAT), header size, body line length, bare
CR/LF, recipients per transaction, and the number of errors per connection. What it
leaves outside: timeouts, TLS, credentials, which extensions are offered, which
addresses are acceptable, and storage.

Bare line feeds (`Limits.normalize_bare_lf`, ``[smtp] bare_newline``). Only CRLF.CRLF
ends DATA, in both modes (RFC 5321 §4.1.1.4; SMTP smuggling, CVE-2023-51764), and a bare
CR in message content is always refused (554 5.6.0). A bare LF:

- ``normalize`` (True, the default, as Postfix 3.9's ``smtpd_forbid_bare_newline =
  normalize``): ends a command line, as it always has here, and ends a content line,
  which is stored with CRLF — in DATA (`dotstuff.Unstuffer`) and in BDAT
  (`body.LfNormalizer`) alike, so a stored message has one kind of line end whichever
  command carried it. A "." line next to a bare LF ("LF . LF", "CRLF . LF", "LF . CRLF")
  is content: its dot is removed as any line's leading dot is, leaving an empty line.
- ``reject`` (False): a command line ending in a bare LF is refused with `500 5.5.2`
  (`BARE_LF_COMMAND`; Postfix's reject mode says 550 5.5.2 and hangs up, we keep the
  session: the line is consumed, nothing after it is read as part of it — except after
  a BDAT line, whose octets we would read as commands, so that closes the connection),
  and a message holding a bare LF is refused at its end with `554 5.6.0`, for DATA and
  BDAT.

LMTP (RFC 2033, ``ServerConnection(lmtp=True)``): LHLO replaces HELO and EHLO, which are
refused (§4.1); after the end of the data (DATA, or BDAT LAST: RFC 3030 CHUNKING) the caller
sends one reply per accepted RCPT, in RCPT order (§4.2): `EndOfData` stays pending until
`send` has been called that many times (`replies_due`). A message refused by the core
itself gets its reply once per recipient in the one `reply_hint`.
"""

from __future__ import annotations

import binascii
import enum
from dataclasses import dataclass
from typing import NoReturn

from pillarbox.proto.buffer import LineTooLong, ReceiveBuffer
from pillarbox.proto.dotstuff import Unstuffer
from pillarbox.proto.errors import LocalProtocolError, RemoteProtocolError
from pillarbox.proto.smtp import grammar
from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.body import BodyScanner, LfNormalizer
from pillarbox.proto.smtp.events import (
    NEED_DATA,
    Auth,
    AuthResponse,
    Bdat,
    BodyChunk,
    ChunkEnd,
    ConnectionClosed,
    DataStart,
    EndOfData,
    Event,
    Hello,
    Help,
    MailFrom,
    NeedData,
    Noop,
    Quit,
    RcptTo,
    Reset,
    StartTls,
    Vrfy,
)
from pillarbox.proto.smtp.responses import Reply

# RFC 4954 §4: an AUTH line (command or response) may be up to 12288 octets.
AUTH_LINE_LIMIT = 12288
# Content is handed out in pieces of at most this size.
CHUNK_SIZE = 256 * 1024
# Verbs that betray an HTTP client talking to us (cross-protocol attacks): close at once.
_HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS"})
_UNIMPLEMENTED = frozenset({"EXPN", "TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML", "BURL"})


class State(enum.Enum):
    INITIAL = "initial"  # connected (or just after TLS), no HELO/EHLO yet
    READY = "ready"  # greeted, no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    DATA = "data"  # receiving DATA content
    BDAT = "bdat"  # receiving the octets of a BDAT chunk
    BDAT_WAIT = "bdat-wait"  # between BDAT chunks of one transaction
    AUTH = "auth"  # a 334 challenge was sent; the next line is a SASL response
    TLS_PENDING = "tls-pending"  # 220 to STARTTLS sent; waiting for tls_started()
    CLOSED = "closed"


_TRANSACTION_STATES = frozenset({State.MAIL, State.RCPT, State.DATA, State.BDAT, State.BDAT_WAIT})


@dataclass(frozen=True, slots=True)
class Limits:
    max_line: int = 4096  # command lines (RFC 5321 §4.5.3.1.4 requires at least 512)
    max_message_size: int = 64 * 1024 * 1024
    max_header_size: int = 1024 * 1024
    max_body_line: int = 1_000_000
    max_recipients: int = 100
    max_errors: int = 20
    # A bare LF ends a line (stored as CRLF) rather than being refused: see module doc.
    normalize_bare_lf: bool = True


class ServerConnection:
    """One SMTP session's protocol state. See the module docstring."""

    def __init__(
        self, limits: Limits | None = None, *, tls: bool = False, lmtp: bool = False
    ) -> None:
        """`tls` is True on an implicit-TLS port (RFC 8314), where STARTTLS is refused;
        `lmtp` makes this an LMTP server (RFC 2033; see the module docstring)."""
        self.limits = limits or Limits()
        self.lmtp = lmtp
        self.state = State.INITIAL
        self.extended = False  # EHLO (not HELO) was used: ESMTP parameters allowed
        self.tls = tls
        self.authenticated = False
        self.errors = 0
        self._buf = ReceiveBuffer(max(self.limits.max_line, AUTH_LINE_LIMIT))
        self._eof = False
        self._closed_reported = False
        self._pending: Event | None = None  # the event awaiting a reply
        self._greeted = False
        self._smtputf8 = False
        self._rcpt_count = 0
        self._used_bdat = False
        self._unstuffer: Unstuffer | None = None
        self._scanner: BodyScanner | None = None
        self._lf_normalizer: LfNormalizer | None = None
        self._replies_due = 0  # LMTP: replies still owed to the pending EndOfData
        self._bdat_remaining = 0
        self._bdat_last = False
        self._discard_remaining = 0  # octets of a refused BDAT chunk still to skip
        self._end_pending = False

    # --- input --------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Append received bytes; ``b""`` means the peer closed its side."""
        if self.state is State.CLOSED:
            return
        if data:
            if self._eof:
                raise LocalProtocolError("data received after EOF")
            self._buf.feed(data)
        else:
            self._eof = True

    @property
    def in_transaction(self) -> bool:
        """A MAIL transaction is open (between accepted MAIL and the end of the message)."""
        return self.state in _TRANSACTION_STATES

    @property
    def awaiting_reply(self) -> bool:
        """An event was handed out and `send` has not answered it yet."""
        return self._pending is not None

    @property
    def replies_due(self) -> int:
        """Replies the pending event still needs: one per accepted recipient for an LMTP
        `EndOfData` (RFC 2033 §4.2), else 1; 0 when nothing is pending."""
        if self._pending is None:
            return 0
        return self._replies_due if isinstance(self._pending, EndOfData) else 1

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buf)

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA. Raises RemoteProtocolError (see module doc)."""
        if self._pending is not None:
            raise LocalProtocolError(f"reply to {type(self._pending).__name__} not sent yet")
        if self.state is State.CLOSED:
            return NEED_DATA
        if self.state is State.TLS_PENDING:
            return NEED_DATA
        if self._discard_remaining:
            skipped = self._buf.read_upto(self._discard_remaining)
            self._discard_remaining -= len(skipped)
            if self._discard_remaining:
                return self._eof_or_need()
        if self.state is State.DATA:
            return self._data_event()
        if self.state is State.BDAT:
            return self._bdat_event()
        try:
            line = self._buf.read_line()
        except LineTooLong:
            if self.state is State.AUTH:
                self.state = State.READY
            self._error(r.LINE_TOO_LONG)
        if line is None:
            return self._eof_or_need()
        if not self.limits.normalize_bare_lf and not line.endswith(b"\r\n"):
            if self.state is State.AUTH:
                self.state = State.READY
            elif line[:5].upper() in (b"BDAT ", b"BDAT\n"):
                # Octets may follow that we will not read as a chunk: close rather than
                # take them for commands (as for a BDAT with a bad size).
                self._close()
                raise RemoteProtocolError("bare LF", r.BARE_LF_BDAT, fatal=True)
            self._error(r.BARE_LF_COMMAND)
        if self.state is State.AUTH:
            return self._auth_response(line)
        return self._command(line)

    def _eof_or_need(self) -> ConnectionClosed | NeedData:
        if self._eof and not self._closed_reported:
            self._closed_reported = True
            self._reset_transaction()
            self.state = State.CLOSED
            return ConnectionClosed()
        return NEED_DATA

    # --- output -------------------------------------------------------------------------
    def send(self, reply: Reply) -> bytes:
        """Serialise the reply to the pending event and apply its state transition.

        Without a pending event only a greeting (220, once, first) or a 421 (the server
        is closing the connection, RFC 5321 §3.8) may be sent.
        """
        data = reply.to_bytes()
        event = self._pending
        code = reply.code
        if event is None:
            if code == 220 and not self._greeted and self.state is State.INITIAL:
                self._greeted = True
                return data
            if code == 421:
                self._close()
                return data
            raise LocalProtocolError(f"reply {code} sent without a pending command")
        self._pending = None
        self._greeted = True
        if code >= 400 and not isinstance(event, EndOfData | ChunkEnd):
            self.errors += 1
        if code == 421:
            self._close()
        elif isinstance(event, Hello):
            if code == 250:
                self.state = State.READY
                self.extended = event.extended
        elif isinstance(event, StartTls):
            if code == 220:
                self.state = State.TLS_PENDING
        elif isinstance(event, Auth | AuthResponse):
            if code == 334:
                self.state = State.AUTH
            else:
                self.state = State.READY
                if code == 235:
                    self.authenticated = True
        elif isinstance(event, MailFrom):
            if code == 250:
                self.state = State.MAIL
                self._smtputf8 = event.smtputf8
                self._rcpt_count = 0
                self._used_bdat = False
        elif isinstance(event, RcptTo):
            if code in (250, 251):
                self.state = State.RCPT
                self._rcpt_count += 1
        elif isinstance(event, DataStart):
            if code == 354:
                self.state = State.DATA
                self._start_content()
                self._unstuffer = Unstuffer(normalize_lf=self.limits.normalize_bare_lf)
        elif isinstance(event, ChunkEnd):
            if code == 250:
                self.state = State.BDAT_WAIT
            else:
                self._reset_transaction()
        elif isinstance(event, EndOfData):
            self._replies_due -= 1
            if self._replies_due > 0:
                self._pending = event  # LMTP: one reply per recipient (RFC 2033 §4.2)
            else:
                self._reset_transaction()
        elif isinstance(event, Quit):
            self._close()
        elif code == 354 or code == 334:
            raise LocalProtocolError(f"reply {code} does not answer {type(event).__name__}")
        return data

    def tls_started(self) -> None:
        """The TLS handshake is done: forget everything from before it (RFC 3207 §4.2),
        including plaintext pipelined after STARTTLS (CVE-2011-0411 class)."""
        if self.state is not State.TLS_PENDING:
            raise LocalProtocolError("tls_started() without an accepted STARTTLS")
        self._buf.clear()
        self.tls = True
        self.extended = False
        self.authenticated = False
        self._reset_transaction()
        self.state = State.INITIAL

    # --- internals ------------------------------------------------------------------------
    def _close(self) -> None:
        self.state = State.CLOSED
        self._pending = None
        self._buf.clear()

    def _reset_transaction(self) -> None:
        if self.state in _TRANSACTION_STATES:
            self.state = State.READY
        self._smtputf8 = False
        self._rcpt_count = 0
        self._used_bdat = False
        self._unstuffer = None
        self._scanner = None
        self._lf_normalizer = None
        self._replies_due = 0
        self._bdat_remaining = 0
        self._bdat_last = False
        self._end_pending = False

    def _error(self, reply: bytes, *, counts: bool = True) -> NoReturn:
        if counts:
            self.errors += 1
        if self.errors > self.limits.max_errors:
            self._close()
            raise RemoteProtocolError("too many errors", r.TOO_MANY_ERRORS, fatal=True)
        raise RemoteProtocolError(reply.decode("utf-8", "replace").strip(), reply)

    def _emit(self, event: Event) -> Event:
        if self.errors > self.limits.max_errors:
            self._close()
            raise RemoteProtocolError("too many errors", r.TOO_MANY_ERRORS, fatal=True)
        self._pending = event
        return event

    def _start_content(self) -> None:
        lim = self.limits
        self._scanner = BodyScanner(
            max_size=lim.max_message_size,
            max_header=lim.max_header_size,
            max_line=lim.max_body_line,
        )
        self._lf_normalizer = LfNormalizer() if lim.normalize_bare_lf else None

    def _data_event(self) -> Event | NeedData:
        assert self._unstuffer is not None and self._scanner is not None
        if self._end_pending:
            return self._end_of_message()
        raw = self._buf.read_upto(CHUNK_SIZE)
        if not raw:
            return self._eof_or_need()
        un = self._unstuffer
        out = un.feed(raw)
        if un.done:
            # Bytes after CRLF.CRLF are pipelined commands: put them back in front.
            rest = un.trailing + self._buf.read_upto(len(self._buf))
            un.trailing = b""
            self._buf.feed(rest)
            self._end_pending = True
        scanner = self._scanner
        scanner.feed(out)
        if out and scanner.error is None:
            return BodyChunk(out)
        if self._end_pending:
            return self._end_of_message()
        return self._data_event() if len(self._buf) else self._eof_or_need()

    def _end_of_message(self) -> Event:
        assert self._scanner is not None
        self._end_pending = False
        error = self._scanner.finish()
        size = self._scanner.size
        replies = self._rcpt_count if self.lmtp else 1
        if error is not None:
            self._reset_transaction()
            self._error(error * replies, counts=False)  # RFC 2033 §4.2
        self._replies_due = replies
        return self._emit(EndOfData(size))

    def _bdat_event(self) -> Event | NeedData:
        assert self._scanner is not None
        if self._bdat_remaining:
            data = self._buf.read_upto(min(self._bdat_remaining, CHUNK_SIZE))
            if not data:
                return self._eof_or_need()
            self._bdat_remaining -= len(data)
            if self._lf_normalizer is not None:
                data = self._lf_normalizer.feed(data)
            self._scanner.feed(data)
            if self._scanner.error is None:
                return BodyChunk(data)
            if self._bdat_remaining:
                return self._bdat_event()
        scanner = self._scanner
        if self._bdat_last:
            return self._end_of_message()
        if scanner.error is not None:
            self._reset_transaction()
            self._error(scanner.error, counts=False)
        self.state = State.BDAT_WAIT
        return self._emit(ChunkEnd(scanner.size))

    def _auth_response(self, line: bytes) -> Event:
        text = line.rstrip(b"\r\n").strip(b" ")
        if text == b"*":
            return self._emit(AuthResponse(b"", cancelled=True))
        try:
            data = binascii.a2b_base64(text, strict_mode=True) if text else b""
        except binascii.Error:
            self.state = State.READY
            self._error(r.BAD_BASE64)
        return self._emit(AuthResponse(data))

    def _command(self, line: bytes) -> Event:
        raw = line.rstrip(b"\r\n")
        if b"\x00" in raw or b"\r" in raw:
            self._error(r.BAD_CHARACTERS)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._error(r.BAD_CHARACTERS)
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if verb in _HTTP_VERBS or verb.endswith(":"):
            self._close()
            raise RemoteProtocolError("HTTP request", r.NOT_SMTP, fatal=True)
        if len(raw) > self.limits.max_line and verb != "AUTH":
            self._error(r.LINE_TOO_LONG)
        handler = _COMMANDS.get(verb)
        if handler is None:
            self._error(r.NOT_IMPLEMENTED if verb in _UNIMPLEMENTED else r.UNKNOWN_COMMAND)
        return handler(self, arg.strip(" "))

    # One method per command; each validates state and syntax, then emits its event.
    def _helo(self, arg: str, extended: bool) -> Event:
        if not arg:
            self._error(r.BAD_ARGUMENTS)
        self._reset_transaction()
        # Lenient: some clients add words after the domain; keep the first.
        return self._emit(Hello(arg.split(" ", 1)[0], extended))

    def _cmd_ehlo(self, arg: str) -> Event:
        if self.lmtp:
            self._error(r.USE_LHLO)  # RFC 2033 §4.1
        return self._helo(arg, True)

    def _cmd_helo(self, arg: str) -> Event:
        if self.lmtp:
            self._error(r.USE_LHLO)
        return self._helo(arg, False)

    def _cmd_lhlo(self, arg: str) -> Event:
        """RFC 2033 §4.1: LHLO is EHLO under another name; an SMTP server knows no LHLO."""
        if not self.lmtp:
            self._error(r.UNKNOWN_COMMAND)
        return self._helo(arg, True)

    @property
    def _hello_first(self) -> bytes:
        return r.LHLO_FIRST if self.lmtp else r.HELLO_FIRST

    def _cmd_starttls(self, arg: str) -> Event:
        if arg:
            self._error(r.BAD_ARGUMENTS)
        if self.tls:
            self._error(r.ALREADY_TLS)
        if self.state is not State.READY:
            self._error(self._hello_first if self.state is State.INITIAL else r.BAD_SEQUENCE)
        return self._emit(StartTls())

    def _cmd_auth(self, arg: str) -> Event:
        if self.state is State.INITIAL or not self.extended:
            self._error(self._hello_first)
        if self.authenticated:
            self._error(r.ALREADY_AUTHENTICATED)
        if self.state is not State.READY:
            self._error(r.BAD_SEQUENCE)
        parts = arg.split(" ")
        if not parts[0] or len(parts) > 2 or not grammar.is_sasl_name(parts[0]):
            self._error(r.BAD_ARGUMENTS)
        initial: bytes | None = None
        if len(parts) == 2:
            if parts[1] == "=":
                initial = b""
            else:
                try:
                    initial = binascii.a2b_base64(parts[1].encode("ascii"), strict_mode=True)
                except (binascii.Error, UnicodeEncodeError):
                    self._error(r.BAD_BASE64)
        return self._emit(Auth(parts[0].upper(), initial))

    def _cmd_mail(self, arg: str) -> Event:
        if self.state is State.INITIAL:
            self._error(self._hello_first)
        if self.state is not State.READY:
            self._error(r.NESTED_MAIL)
        if arg[:5].upper() != "FROM:":
            self._error(r.BAD_ARGUMENTS)
        params_text = arg[5:].lstrip(" ")
        try:
            path, rest = grammar.parse_path(params_text, reverse=True)
            params = grammar.parse_params(rest)
            if params and not self.extended:
                self._error(r.ESMTP_PARAMS_AFTER_HELO)
            event = self._mail_event(path.mailbox, params)
        except grammar.GrammarError as exc:
            self._error(exc.reply)
        if path.utf8 and not event.smtputf8:
            self._error(r.NON_ASCII_ADDRESS)
        return self._emit(event)

    def _mail_event(self, address: str, params: list[tuple[str, str | None]]) -> MailFrom:
        size: int | None = None
        body: str | None = None
        smtputf8 = False
        ret = envid = auth = None
        for key, value in params:
            if key == "SIZE":
                size = grammar.check_size(value)
                if size > self.limits.max_message_size:  # RFC 1870 §6.2
                    self._error(r.MESSAGE_TOO_BIG)
            elif key == "BODY":
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    self._error(r.UNKNOWN_PARAMETER if value else r.BAD_PARAMETER)
                body = value.upper()
            elif key == "SMTPUTF8":
                if value is not None:
                    self._error(r.BAD_PARAMETER)
                smtputf8 = True
            elif key == "RET":
                if value is None or value.upper() not in ("FULL", "HDRS"):
                    self._error(r.BAD_PARAMETER)
                ret = value.upper()
            elif key == "ENVID":
                if value is None:
                    self._error(r.BAD_PARAMETER)
                envid = grammar.check_xtext(value)
            elif key == "AUTH":
                if value is None:
                    self._error(r.BAD_PARAMETER)
                auth = value
            else:
                self._error(r.UNKNOWN_PARAMETER)
        return MailFrom(address, size, body, smtputf8, ret, envid, auth)

    def _cmd_rcpt(self, arg: str) -> Event:
        if self.state is State.INITIAL:
            self._error(self._hello_first)
        if self.state not in (State.MAIL, State.RCPT):
            self._error(r.NEED_MAIL)
        if arg[:3].upper() != "TO:":
            self._error(r.BAD_ARGUMENTS)
        notify = orcpt = None
        try:
            path, rest = grammar.parse_path(arg[3:].lstrip(" "), reverse=False)
            params = grammar.parse_params(rest)
            if params and not self.extended:
                self._error(r.ESMTP_PARAMS_AFTER_HELO)
            for key, value in params:
                if key == "NOTIFY" and value is not None:
                    notify = grammar.check_notify(value)
                elif key == "ORCPT" and value is not None:
                    orcpt = grammar.check_orcpt(value)
                elif key in ("NOTIFY", "ORCPT"):
                    self._error(r.BAD_PARAMETER)
                else:
                    self._error(r.UNKNOWN_PARAMETER)
        except grammar.GrammarError as exc:
            self._error(exc.reply)
        if path.utf8 and not self._smtputf8:
            self._error(r.NON_ASCII_ADDRESS)
        if self._rcpt_count >= self.limits.max_recipients:
            self._error(r.TOO_MANY_RECIPIENTS)  # RFC 5321 §4.5.3.1.10
        return self._emit(RcptTo(path.mailbox, notify, orcpt))

    def _cmd_data(self, arg: str) -> Event:
        if arg:
            self._error(r.BAD_ARGUMENTS)
        if self.state is State.INITIAL:
            self._error(self._hello_first)
        if self.state is State.BDAT_WAIT:
            self._error(r.DATA_AFTER_BDAT)  # RFC 3030 §3
        if self.state is State.MAIL:
            self._error(r.NO_VALID_RECIPIENTS)  # RFC 5321 §3.3
        if self.state is not State.RCPT:
            self._error(r.NEED_MAIL)
        return self._emit(DataStart())

    def _cmd_bdat(self, arg: str) -> Event:
        parts = arg.split(" ")
        if not 1 <= len(parts) <= 2 or not parts[0].isdigit() or not parts[0].isascii():
            # Without a valid size we cannot know how much to skip: close the connection.
            self._close()
            raise RemoteProtocolError(
                "bad BDAT", r.error_bytes(501, "5.5.4", "Bad BDAT size, closing"), fatal=True
            )
        size = int(parts[0]) if len(parts[0]) <= 20 else 1 << 70
        if len(parts) == 2 and parts[1].upper() != "LAST":
            self._discard_remaining = size
            self._error(r.BAD_ARGUMENTS)
        last = len(parts) == 2
        if self.state not in (State.RCPT, State.BDAT_WAIT):
            # RFC 3030 §2: the octets are read (and dropped) even when the command fails.
            self._discard_remaining = size
            if self.state is State.MAIL:
                self._reset_transaction()
                self._error(r.NO_VALID_RECIPIENTS)
            self._error(self._hello_first if self.state is State.INITIAL else r.NEED_MAIL)
        if self.state is State.RCPT:
            self._start_content()
        self.state = State.BDAT
        self._used_bdat = True
        self._bdat_remaining = size
        self._bdat_last = last
        return Bdat(size, last)

    def _cmd_rset(self, arg: str) -> Event:
        if arg:
            self._error(r.BAD_ARGUMENTS)
        self._reset_transaction()
        return self._emit(Reset())

    def _cmd_noop(self, arg: str) -> Event:
        return self._emit(Noop())

    def _cmd_vrfy(self, arg: str) -> Event:
        if not arg:
            self._error(r.BAD_ARGUMENTS)
        return self._emit(Vrfy(arg))

    def _cmd_help(self, arg: str) -> Event:
        return self._emit(Help(arg))

    def _cmd_quit(self, arg: str) -> Event:
        if arg:
            self._error(r.BAD_ARGUMENTS)
        self._reset_transaction()
        return self._emit(Quit())


_COMMANDS = {
    "EHLO": ServerConnection._cmd_ehlo,
    "HELO": ServerConnection._cmd_helo,
    "LHLO": ServerConnection._cmd_lhlo,
    "STARTTLS": ServerConnection._cmd_starttls,
    "AUTH": ServerConnection._cmd_auth,
    "MAIL": ServerConnection._cmd_mail,
    "RCPT": ServerConnection._cmd_rcpt,
    "DATA": ServerConnection._cmd_data,
    "BDAT": ServerConnection._cmd_bdat,
    "RSET": ServerConnection._cmd_rset,
    "NOOP": ServerConnection._cmd_noop,
    "VRFY": ServerConnection._cmd_vrfy,
    "HELP": ServerConnection._cmd_help,
    "QUIT": ServerConnection._cmd_quit,
}
