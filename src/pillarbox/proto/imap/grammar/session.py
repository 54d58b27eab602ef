"""Parse functions of the session commands: any state, not authenticated, ENABLE, IDLE.

CAPABILITY, NOOP, LOGOUT (RFC 9051 §6.1), ID (RFC 2971 §3.3), STARTTLS, AUTHENTICATE with
SASL-IR (RFC 9051 §6.2.2, RFC 4959), LOGIN (RFC 9051 §6.2.3), ENABLE (RFC 5161) and IDLE
(RFC 2177). `decode_base64` lives here because SASL's base64 is AUTHENTICATE's: the
connection uses it for the client's later lines of the exchange too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import ATOM_CHAR, RPAREN
from pillarbox.proto.imap.grammar.reader import CommandParser, ParseError, Reader, no_arguments


def _parse_authenticate(r: Reader, tag: str) -> c.Authenticate:
    # RFC 9051 §6.2.2, RFC 4959 (SASL-IR)
    r.sp()
    mechanism = r.upper_atom("mechanism")
    initial: bytes | None = None
    if r.maybe_sp():
        raw = r.run(ATOM_CHAR)
        initial = decode_base64(raw)
    r.end()
    return c.Authenticate(tag, mechanism, initial)


def decode_base64(raw: bytes) -> bytes:
    """SASL base64 (RFC 9051 §6.2.2): "=" is the empty response; strict alphabet."""
    if raw == b"=":
        return b""
    if not raw:
        raise ParseError("Invalid base64")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("Invalid base64") from None


def _parse_login(r: Reader, tag: str) -> c.Login:
    r.sp()
    user = r.text(r.astring(), "User name")
    r.sp()
    password = r.text(r.astring(), "Password")
    r.end()
    return c.Login(tag, user, password)


def _parse_enable(r: Reader, tag: str) -> c.Enable:
    # RFC 5161: ENABLE 1*(SP capability)
    caps = []
    r.sp()
    caps.append(r.upper_atom("capability"))
    while r.maybe_sp():
        caps.append(r.upper_atom("capability"))
    r.end()
    return c.Enable(tag, tuple(caps))


def _parse_id(r: Reader, tag: str) -> c.Id:
    # RFC 2971 §3.3: "ID" SP id_params_list; id_params_list = "(" #(string SP nstring) ")" / nil
    r.sp()
    if r.accept(b"NIL"):
        r.end()
        return c.Id(tag, None)
    r.open_paren()
    params: list[tuple[str, str | None]] = []
    while r.peek() != RPAREN:
        if params:
            r.sp()
        key = r.text(r.string(), "ID field")
        r.sp()
        raw = r.nstring()
        params.append((key, None if raw is None else r.text(raw, "ID value")))
    r.close_paren()
    r.end()
    return c.Id(tag, tuple(params))


PARSERS: Final[dict[str, CommandParser]] = {
    "CAPABILITY": no_arguments(c.Capability),
    "NOOP": no_arguments(c.Noop),
    "LOGOUT": no_arguments(c.Logout),
    "STARTTLS": no_arguments(c.StartTls),
    "IDLE": no_arguments(c.Idle),
    "ID": _parse_id,
    "AUTHENTICATE": _parse_authenticate,
    "LOGIN": _parse_login,
    "ENABLE": _parse_enable,
}
