"""SMTP replies: one value type and its serialisation, plus the replies the core itself uses.

A reply is a code (RFC 5321 §4.2), an optional enhanced status code (RFC 3463, announced
with ENHANCEDSTATUSCODES, RFC 2034) and one or more text lines. Serialisation lives here
only, so every line the server sends has the same shape. RFC 2034 §3: the greeting, the
EHLO reply and 334 challenges carry no enhanced status code; everything else does.
Texts are fixed wording chosen by the server; this module never formats exception text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.proto.errors import LocalProtocolError


@dataclass(frozen=True, slots=True)
class Reply:
    """`code` 200-599; `status` like "2.1.0" or None; `lines` the text, one per wire line."""

    code: int
    status: str | None
    lines: tuple[str, ...]

    @classmethod
    def of(cls, code: int, status: str | None, *lines: str) -> Reply:
        return cls(code, status, lines or ("",))

    def to_bytes(self) -> bytes:
        if not 200 <= self.code <= 599:
            raise LocalProtocolError(f"bad reply code {self.code}")
        out: list[str] = []
        last = len(self.lines) - 1
        for i, line in enumerate(self.lines):
            if "\r" in line or "\n" in line:
                raise LocalProtocolError("reply text contains a line break")
            sep = " " if i == last else "-"
            text = f"{self.status} {line}" if self.status else line
            out.append(f"{self.code}{sep}{text}".rstrip(" ") + "\r\n")
        return "".join(out).encode("utf-8")

    @property
    def positive(self) -> bool:
        return self.code < 400


def error_bytes(code: int, status: str, text: str) -> bytes:
    """The wire form of a one-line error, for `RemoteProtocolError.reply_hint`."""
    return Reply.of(code, status, text).to_bytes()


# Replies the core raises (RFC 5321 §4.2.2, RFC 3463 §3).
SYNTAX_ERROR = error_bytes(500, "5.5.2", "Syntax error")
LINE_TOO_LONG = error_bytes(500, "5.5.2", "Line too long")
BAD_CHARACTERS = error_bytes(500, "5.5.2", "Invalid characters in command")
UNKNOWN_COMMAND = error_bytes(500, "5.5.1", "Command unrecognized")
NOT_IMPLEMENTED = error_bytes(502, "5.5.1", "Command not implemented")
BAD_ARGUMENTS = error_bytes(501, "5.5.4", "Syntax error in parameters or arguments")
HELLO_FIRST = error_bytes(503, "5.5.1", "Send HELO/EHLO first")
BAD_SEQUENCE = error_bytes(503, "5.5.1", "Bad sequence of commands")
NESTED_MAIL = error_bytes(503, "5.5.1", "Sender already specified")
NEED_MAIL = error_bytes(503, "5.5.1", "Need MAIL command")
NEED_RCPT = error_bytes(503, "5.5.1", "Need RCPT command")
NO_VALID_RECIPIENTS = error_bytes(554, "5.5.1", "No valid recipients")
DATA_AFTER_BDAT = error_bytes(503, "5.5.1", "DATA not allowed after BDAT in one transaction")
BAD_SENDER_SYNTAX = error_bytes(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = error_bytes(501, "5.1.3", "Bad recipient address syntax")
UNKNOWN_PARAMETER = error_bytes(555, "5.5.4", "Parameter not recognized or not implemented")
BAD_PARAMETER = error_bytes(501, "5.5.4", "Invalid parameter value")
NON_ASCII_ADDRESS = error_bytes(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
ESMTP_PARAMS_AFTER_HELO = error_bytes(555, "5.5.4", "ESMTP parameters require EHLO")
TOO_MANY_RECIPIENTS = error_bytes(452, "4.5.3", "Too many recipients")
MESSAGE_TOO_BIG = error_bytes(552, "5.3.4", "Message size exceeds fixed maximum message size")
HEADER_TOO_BIG = error_bytes(552, "5.3.4", "Message header size exceeds limit")
BODY_LINE_TOO_LONG = error_bytes(554, "5.6.0", "Message line too long")
BARE_LINE_ENDING = error_bytes(
    554, "5.6.0", "Bare CR or LF in message; lines must end with CRLF (RFC 5321 section 2.3.8)"
)
# Postfix 3.9 answers "550 5.5.2 Error: bare <LF> received" and disconnects; we keep the
# basic code of a syntax error (RFC 5321 §4.2.2) and the session (the line is consumed).
BARE_LF_COMMAND = error_bytes(500, "5.5.2", "Bare <LF> received; lines must end with <CR><LF>")
BARE_LF_BDAT = error_bytes(500, "5.5.2", "Bare <LF> received after BDAT, closing")
USE_LHLO = error_bytes(500, "5.5.1", "This is an LMTP server: use LHLO (RFC 2033)")
LHLO_FIRST = error_bytes(503, "5.5.1", "Send LHLO first")
ALREADY_TLS = error_bytes(503, "5.5.1", "TLS already active")
ALREADY_AUTHENTICATED = error_bytes(503, "5.5.1", "Already authenticated")
BAD_BASE64 = error_bytes(501, "5.5.2", "Invalid base64 data")
TOO_MANY_ERRORS = error_bytes(421, "4.7.0", "Too many errors, closing connection")
NOT_SMTP = error_bytes(421, "4.7.0", "This is an SMTP server, closing connection")

# Replies the front-end sends for events (kept here so wording lives in one module).
OK = Reply.of(250, "2.0.0", "OK")
START_MAIL_INPUT = Reply.of(354, None, "End data with <CR><LF>.<CR><LF>")
READY_TO_START_TLS = Reply.of(220, "2.0.0", "Ready to start TLS")
CLOSING = Reply.of(221, "2.0.0", "Bye")
RESET_OK = Reply.of(250, "2.0.0", "Reset OK")
CANNOT_VRFY = Reply.of(
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
)
HELP = Reply.of(214, "2.0.0", "See RFC 5321 (https://www.rfc-editor.org/rfc/rfc5321)")
IDLE_TIMEOUT = Reply.of(421, "4.4.2", "Idle timeout, closing connection")
AUTH_CANCELLED = Reply.of(501, "5.0.0", "Authentication cancelled")
AUTH_SUCCEEDED = Reply.of(235, "2.7.0", "Authentication successful")
AUTH_FAILED = Reply.of(535, "5.7.8", "Authentication credentials invalid")
AUTH_REQUIRED = Reply.of(530, "5.7.0", "Authentication required")
ENCRYPTION_REQUIRED = Reply.of(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
UNKNOWN_MECHANISM = Reply.of(504, "5.5.4", "Unrecognized authentication mechanism")
TLS_NOT_AVAILABLE = Reply.of(454, "4.7.0", "TLS not available")
LOCAL_ERROR = Reply.of(451, "4.3.0", "Local error in processing, try again later")
