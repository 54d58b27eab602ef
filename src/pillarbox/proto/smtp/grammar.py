"""SMTP command-argument grammar: paths, mailboxes and ESMTP parameters.

Owns the RFC 5321 §4.1.2 ABNF (Path, Mailbox, Dot-string, Quoted-string, Domain,
address-literal), its RFC 6531 §3.3 UTF-8 extension, and the value grammars of the
parameters we announce: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET, ENVID,
NOTIFY, ORCPT (RFC 3461 §4), AUTH (RFC 4954 §5). Functions raise `GrammarError` carrying
the reply to send; the connection turns it into `RemoteProtocolError`.

Strictness is deliberate: relay tricks (``a%b@c``, ``a!b``, ``"a@b"@c``, ``@a:b@c``,
``b@c.``) are either refused here or reach policy as one unambiguous mailbox whose domain
is the part after the last "@". Nothing here decides what is local.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pillarbox.proto.smtp import responses as r

# RFC 5322 §3.2.3 atext; RFC 6531 §3.3 adds any non-ASCII UTF-8 character.
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_ATOM_ASCII = re.compile(rf"[{_ATEXT}]+")
_ATOM_UTF8 = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+")
_DOT_STRING_ASCII = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_DOT_STRING_UTF8 = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+(?:\.[{_ATEXT}\u0080-\U0010ffff]+)*")
# RFC 5321 §4.1.2 Quoted-string: qtextSMTP = %d32-33 / %d35-91 / %d93-126,
# quoted-pairSMTP = %d92 %d32-126.
_QUOTED_ASCII = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')
_QUOTED_UTF8 = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"')
# sub-domain = Let-dig [Ldh-str]; U-labels allowed with SMTPUTF8.
_LABEL_ASCII = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_LABEL_UTF8 = re.compile(
    r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\u0080-\U0010ffff-]*[A-Za-z0-9\u0080-\U0010ffff])?"
)
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 allowed with SMTPUTF8 (RFC 6531 §3.3).
_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\u0080-\U0010ffff]+")
# RFC 3461 §4: xtext = *( xchar / hexchar ), hexchar = "+" 2HEXDIG (upper case).
_XTEXT = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_ORCPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*;(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+")

MAX_LOCAL_PART = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN = 255  # RFC 5321 §4.5.3.1.2
MAX_PATH = 256  # RFC 5321 §4.5.3.1.3


class GrammarError(Exception):
    """An argument does not match the grammar; `reply` is the wire reply."""

    def __init__(self, reply: bytes) -> None:
        super().__init__(reply.decode("utf-8", "replace").strip())
        self.reply = reply


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed reverse- or forward-path: the mailbox ("" for <>) and whether it has
    non-ASCII characters (then SMTPUTF8 is required, RFC 6531 §3.4)."""

    mailbox: str
    utf8: bool


def _is_domain(text: str, utf8: bool) -> bool:
    if not text or len(text.encode("utf-8")) > MAX_DOMAIN:
        return False
    label = _LABEL_UTF8 if utf8 else _LABEL_ASCII
    return all(label.fullmatch(part) for part in text.split("."))


def _is_address_literal(text: str) -> bool:
    """RFC 5321 §4.1.3: [IPv4], [IPv6:...]; General-address-literal is refused."""
    if not (text.startswith("[") and text.endswith("]")):
        return False
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return isinstance(ipaddress.ip_address(inner[5:]), ipaddress.IPv6Address)
        if not re.fullmatch(r"[0-9.]+", inner):
            return False
        ipaddress.IPv4Address(inner)
    except ValueError:
        return False
    return True


def _unquote(local: str) -> str:
    """The content of a quoted local part, if it can be written as a dot-string."""
    content = re.sub(r"\\(.)", r"\1", local[1:-1])
    if _DOT_STRING_UTF8.fullmatch(content):
        return content
    return local


def parse_mailbox(text: str, *, utf8: bool, bad: bytes) -> str:
    """Validate ``Local-part "@" (Domain / address-literal)``; return it normalised
    (quoted local part unquoted when possible). Raises GrammarError(bad)."""
    if text.startswith('"'):
        quoted = (_QUOTED_UTF8 if utf8 else _QUOTED_ASCII).match(text)
        if quoted is None or text[quoted.end() : quoted.end() + 1] != "@":
            raise GrammarError(bad)
        local = _unquote(quoted.group(0))
        domain = text[quoted.end() + 1 :]
    else:
        local, at, domain = text.partition("@")
        if not at or not (_DOT_STRING_UTF8 if utf8 else _DOT_STRING_ASCII).fullmatch(local):
            raise GrammarError(bad)
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise GrammarError(bad)
    if not (_is_domain(domain, utf8) or _is_address_literal(domain)):
        raise GrammarError(bad)
    return f"{local}@{domain}"


def parse_path(text: str, *, reverse: bool, utf8_allowed: bool = True) -> tuple[Path, str]:
    """Parse ``"<" [A-d-l ":"] Mailbox ">"`` (or ``<>`` for a reverse-path) at the start of
    `text`; return the path and the rest of the text (the parameters)."""
    bad = r.BAD_SENDER_SYNTAX if reverse else r.BAD_RECIPIENT_SYNTAX
    if not text.startswith("<"):
        raise GrammarError(bad)
    # The closing ">" is the first one outside a quoted string.
    i, n, in_quote = 1, len(text), False
    while i < n:
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ">":
            break
        i += 1
    if i >= n:
        raise GrammarError(bad)
    inner, rest = text[1:i], text[i + 1 :]
    if rest and not rest.startswith(" "):
        raise GrammarError(bad)
    if len(inner.encode("utf-8")) > MAX_PATH:
        raise GrammarError(bad)
    utf8 = not inner.isascii()
    if utf8 and not utf8_allowed:
        raise GrammarError(bad)
    if inner == "":
        if not reverse:
            raise GrammarError(bad)
        return Path("", False), rest.strip(" ")
    if inner.startswith("@"):
        # RFC 5321 §4.1.1.3 / Appendix C: a source route "@a,@b:" is accepted and ignored.
        route, colon, inner = inner.partition(":")
        if not colon:
            raise GrammarError(bad)
        for hop in route.split(","):
            if not hop.startswith("@") or not _is_domain(hop[1:], utf8):
                raise GrammarError(bad)
    if not reverse and inner.lower() == "postmaster":
        # RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
        return Path("postmaster", False), rest.strip(" ")
    return Path(parse_mailbox(inner, utf8=utf8, bad=bad), utf8), rest.strip(" ")


def parse_params(text: str) -> list[tuple[str, str | None]]:
    """``esmtp-param *(SP esmtp-param)`` as (KEYWORD upper-cased, value or None)."""
    params: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for item in text.split(" "):
        if not item:
            continue
        keyword, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(keyword) or (eq and not _VALUE.fullmatch(value)):
            raise GrammarError(r.BAD_ARGUMENTS)
        key = keyword.upper()
        if key in seen:  # RFC 1869 §6: a parameter may appear only once
            raise GrammarError(r.BAD_ARGUMENTS)
        seen.add(key)
        params.append((key, value if eq else None))
    return params


def check_xtext(value: str) -> str:
    """RFC 3461 §4 xtext (ENVID); returns it unchanged."""
    if not _XTEXT.fullmatch(value) or len(value) > 100:  # RFC 3461 §4.4: 100 chars
        raise GrammarError(r.BAD_PARAMETER)
    return value


def check_notify(value: str) -> str:
    """RFC 3461 §4.1: NEVER, or a comma list of SUCCESS, FAILURE, DELAY."""
    items = value.upper().split(",")
    if items == ["NEVER"]:
        return "NEVER"
    if not items or len(set(items)) != len(items):
        raise GrammarError(r.BAD_PARAMETER)
    if any(i not in ("SUCCESS", "FAILURE", "DELAY") for i in items):
        raise GrammarError(r.BAD_PARAMETER)
    return ",".join(items)


def check_orcpt(value: str) -> str:
    """RFC 3461 §4.2: addr-type ";" xtext (or utf-8-addr-xtext with SMTPUTF8, RFC 6533)."""
    if not _ORCPT.fullmatch(value) and not (
        ";" in value and not value.isascii() and _KEYWORD.fullmatch(value.split(";", 1)[0])
    ):
        raise GrammarError(r.BAD_PARAMETER)
    if len(value) > 500:
        raise GrammarError(r.BAD_PARAMETER)
    return value


def check_size(value: str | None) -> int:
    """RFC 1870 §4: size-value = 1*20DIGIT."""
    if value is None or not value.isdigit() or not value.isascii() or len(value) > 20:
        raise GrammarError(r.BAD_PARAMETER)
    return int(value)


_SASL_NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")


def is_sasl_name(name: str) -> bool:
    """RFC 4422 §3.1 mechanism names: 1-20 of upper-case letters, digits, "-" and "_"."""
    return _SASL_NAME.fullmatch(name) is not None
