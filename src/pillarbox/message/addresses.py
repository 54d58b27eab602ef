"""RFC 5322 §3.4 address lists, parsed leniently into IMAP's address model.

Owns one tokenizer and parser for mailbox lists, groups, angle addresses with obsolete
source routes (RFC 5322 §4.4), comments and quoted strings, producing what ENVELOPE
needs (RFC 9051 §7.5.2: name, adl, mailbox, host, with group start/end markers) and the
(name, address) pairs services need. Values stay latin-1 `str` (raw bytes) so ENVELOPE
can send them unchanged; `addresses()` decodes names for display.

We do not use `email.utils.getaddresses` for this: it flattens groups, drops source
routes and cannot tell a missing domain from an empty one, all of which ENVELOPE must
report. It must not raise on any input.
"""

from __future__ import annotations

from dataclasses import dataclass

from pillarbox.message.encoded_words import decode_header_value

# Placeholders c-client and Dovecot send, since NIL host would mean a group marker.
MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_HOST = ".MISSING-HOST-NAME."


@dataclass(frozen=True, slots=True)
class Address:
    """One IMAP address; a group start has host None, a group end everything None."""

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None


# Token kinds
_ATOM, _QUOTED, _COMMENT, _LITERAL, _SPECIAL = range(5)
_SPECIALS = "<>@,;:."


@dataclass(frozen=True, slots=True)
class _Token:
    kind: int
    text: str  # atom text, unquoted string, comment content, "[literal]", or the special
    space_before: bool


def _tokenize(value: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    n = len(value)
    space = False
    while i < n:
        c = value[i]
        if c in " \t\r\n":
            space = True
            i += 1
        elif c == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            i += 1
            tokens.append(_Token(_QUOTED, "".join(chars), space))
            space = False
        elif c == "(":
            depth = 1
            i += 1
            start = i
            while i < n and depth:
                if value[i] == "\\":
                    i += 1
                elif value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                i += 1
            end = i - 1 if depth == 0 else n
            tokens.append(_Token(_COMMENT, value[start:end], space))
            space = True
        elif c == "[":
            close = value.find("]", i)
            end = n if close < 0 else close + 1
            tokens.append(_Token(_LITERAL, value[i:end], space))
            space = False
            i = end
        elif c in _SPECIALS:
            tokens.append(_Token(_SPECIAL, c, space))
            space = False
            i += 1
        else:
            # An atom; a stray ")" or "]" is taken as atom text so the scan always moves.
            start = i
            i += 1
            while i < n and value[i] not in ' \t\r\n"()[' and value[i] not in _SPECIALS:
                i += 1
            tokens.append(_Token(_ATOM, value[start:i], space))
            space = False
    return tokens


def _phrase(tokens: list[_Token]) -> str | None:
    """A display name: words joined as written, quotes removed, comments dropped."""
    out: list[str] = []
    for token in tokens:
        if token.kind == _COMMENT:
            continue
        if out and token.space_before:
            out.append(" ")
        out.append(token.text)
    text = "".join(out).strip()
    return text or None


def _spec(tokens: list[_Token]) -> str:
    """An addr-spec piece (local part or domain) without whitespace or comments."""
    out: list[str] = []
    for token in tokens:
        if token.kind == _COMMENT:
            continue
        out.append('"' + _requote(token.text) + '"' if token.kind == _QUOTED else token.text)
    return "".join(out)


def _requote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _mailbox(tokens: list[_Token]) -> Address | None:
    """One mailbox: `phrase <route:local@domain>` or `local@domain (comment)`."""
    if not tokens:
        return None
    angle = next((i for i, t in enumerate(tokens) if t.kind == _SPECIAL and t.text == "<"), -1)
    adl: str | None = None
    if angle >= 0:
        name = _phrase(tokens[:angle])
        rest = tokens[angle + 1 :]
        close = next((i for i, t in enumerate(rest) if t.kind == _SPECIAL and t.text == ">"), -1)
        spec = rest if close < 0 else rest[:close]
        if name is None:
            trailing = rest[close + 1 :] if close >= 0 else []
            comments = [t.text for t in trailing if t.kind == _COMMENT]
            name = (comments[-1].strip() or None) if comments else None
        # RFC 5322 §4.4 obs-route: "@a,@b:" before the addr-spec.
        if spec and spec[0].kind == _SPECIAL and spec[0].text == "@":
            colon = next(
                (i for i, t in enumerate(spec) if t.kind == _SPECIAL and t.text == ":"), -1
            )
            if colon >= 0:
                adl = _spec(spec[:colon]) or None
                spec = spec[colon + 1 :]
        if not [t for t in spec if t.kind != _COMMENT] and name is None:
            return None
    else:
        if all(t.kind == _COMMENT for t in tokens):
            # Only CFWS (`group: (foo) ;`): no mailbox there, so no address (RFC 5322
            # §3.4 group-list may be CFWS; RFC 9051 §7.5.2 group markers only).
            return None
        spec = tokens
        comments = [t.text for t in tokens if t.kind == _COMMENT]
        name = (comments[-1].strip() or None) if comments else None
    at = -1
    for i, token in enumerate(spec):
        if token.kind == _SPECIAL and token.text == "@":
            at = i
    if at >= 0:
        local = _spec(spec[:at])
        host = _spec(spec[at + 1 :])
    else:
        local = _spec(spec)
        host = ""
    if not local and not host and name is None:
        return None
    return Address(name, adl, local or MISSING_MAILBOX, host or MISSING_HOST)


def parse_address_list(value: str) -> list[Address]:
    """Parse an address-list into IMAP addresses with group markers; never raises.

    RFC 9051 §7.5.2: a group is (NIL NIL "name" NIL), its members, then
    (NIL NIL NIL NIL). An unterminated group is closed at the end of the list.
    """
    tokens = _tokenize(value)
    result: list[Address] = []
    unit: list[_Token] = []
    in_group = False
    angle = False
    for token in tokens:
        if token.kind == _SPECIAL:
            if token.text == "<":
                angle = True
            elif token.text == ">":
                angle = False
            elif not angle and token.text == ",":
                address = _mailbox(unit)
                if address is not None:
                    result.append(address)
                unit = []
                continue
            elif not angle and token.text == ":" and not in_group:
                result.append(Address(None, None, _phrase(unit) or "", None))
                in_group = True
                unit = []
                continue
            elif not angle and token.text == ";" and in_group:
                address = _mailbox(unit)
                if address is not None:
                    result.append(address)
                result.append(Address(None, None, None, None))
                in_group = False
                unit = []
                continue
        unit.append(token)
    address = _mailbox(unit)
    if address is not None:
        result.append(address)
    if in_group:
        result.append(Address(None, None, None, None))
    return result


def format_address_list(value: str) -> str:
    """Decoded "Name <local@host>, ..." text of an address list, for SEARCH."""
    out: list[str] = []
    for address in parse_address_list(value):
        if address.host is None:
            if address.mailbox is not None:
                out.append(decode_header_value(address.mailbox.encode("latin-1")) + ":")
            continue
        spec = f"{address.mailbox}@{address.host}"
        if address.host == MISSING_HOST:
            spec = address.mailbox or ""
        spec = decode_header_value(spec.encode("latin-1"))
        if address.name:
            out.append(f"{decode_header_value(address.name.encode('latin-1'))} <{spec}>")
        else:
            out.append(spec)
    return ", ".join(out).replace(":, ", ": ")


def addresses(value: str | bytes) -> list[tuple[str, str]]:
    """(decoded display name, "local@domain") for every mailbox in an address list.

    Group members are included and group names dropped; a mailbox without a domain
    comes back as the bare local part. For the submission service (recipients from
    To/Cc/Bcc, the From address), where RFC 5322 §3.4 syntax matters more than display.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if isinstance(value, str):
        # Keep non-latin-1 text intact: work on its UTF-8 bytes, read as latin-1.
        text = value.encode("utf-8").decode("latin-1")
    pairs: list[tuple[str, str]] = []
    for address in parse_address_list(text):
        if address.host is None:
            continue
        local = address.mailbox or ""
        spec = local if address.host == MISSING_HOST else f"{local}@{address.host}"
        raw_name = (address.name or "").encode("latin-1")
        readable = spec.encode("latin-1").decode("utf-8", "replace")
        pairs.append((decode_header_value(raw_name), readable))
    return pairs
