"""Canonical mail addresses and domain names: the one normaliser every caller uses.

An address is stored, looked up and compared in one canonical form, so that
``Alice@Example.ORG.``, ``alice@example.org`` and ``"alice"@EXAMPLE.org`` are one account
and every front-end (SMTP RCPT, IMAP LOGIN, POP3 USER, the CLI) finds the same one.

- Domain: IDNA 2008 with the UTS #46 mapping (RFC 5891, UTS #46 non-transitional, as
  RFC 6531 SMTPUTF8 expects), so a U-label becomes its lower-case A-label
  (``bücher.example`` → ``xn--bcher-kva.example``); one trailing dot (an absolute name,
  RFC 1034 §3.1) is dropped; every label must be LDH (RFC 1035 §2.3.1, RFC 5321 §4.1.2)
  and at most 63 octets, the name at most 253. An address literal (``[192.0.2.1]``) is
  not a domain name.
- Local part: a dot-atom (RFC 5322 §3.4.1; UTF-8 allowed, RFC 6531 §3.3 / RFC 6532 §3.2)
  or a quoted string (RFC 5321 §4.1.2). A quoted string whose content is a valid
  dot-atom means the same mailbox as the bare form and is unquoted (RFC 5321 §4.1.2:
  quote only when needed). Pillarbox treats local parts as case-insensitive (as Postfix,
  Dovecot and mox do by default, although RFC 5321 §2.4 lets a server be
  case-sensitive): they are lower-cased, after Unicode NFC normalisation (RFC 6530 §10.1
  asks for NFC). At most 64 octets (RFC 5321 §4.5.3.1.1); the address at most 254
  (the 256-octet path of §4.5.3.1.3 less its angle brackets).

Errors are `InvalidAddress` (a `ValueError`) with a message fit for a terminal.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import idna

MAX_LOCAL_OCTETS = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN_OCTETS = 253  # RFC 1035 §2.3.4 less the root's trailing dot
MAX_ADDRESS_OCTETS = 254  # RFC 5321 §4.5.3.1.3: a path of 256 with its "<" and ">"

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# RFC 5322 §3.2.3 atext, ASCII part; non-ASCII (RFC 6532 UTF8-non-ascii) is checked apart.
_ATEXT_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


# Longer input is refused before any work: even in U-labels of four UTF-8 octets a
# character no name or address within the limits above is longer, and the domain cache
# below must not keep (or an error message echo) what a client sent by the megabyte.
MAX_INPUT_CHARACTERS = 1024


class InvalidAddress(ValueError):
    """Not a mail address or domain name Pillarbox accepts."""


def _shown(text: str) -> str:
    """The input as an error message may show it: quoted, and cut short."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def normalize_domain(name: str) -> str:
    """The canonical (lower-case A-label) form of a domain name; InvalidAddress if none."""
    text = name.strip()
    if len(text) > MAX_INPUT_CHARACTERS:
        raise InvalidAddress("domain name is too long")
    return _canonical_domain(text)


@functools.lru_cache(maxsize=4096)
def _canonical_domain(name: str) -> str:
    """`normalize_domain` of a stripped, length-checked name. Cached: a server sees the
    same few domains over and over (every RCPT, every login), and IDNA processing is the
    costly part of normalising an address."""
    text = name
    if text.endswith("."):
        text = text[:-1]
    if not text or text.startswith("["):
        raise InvalidAddress(f"invalid domain name: {_shown(name)}")
    try:
        ascii_name = idna.encode(text, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise InvalidAddress(f"invalid domain name: {_shown(name)}") from None
    if len(ascii_name) > MAX_DOMAIN_OCTETS or not all(
        _LDH_LABEL.match(label) for label in ascii_name.split(".")
    ):
        raise InvalidAddress(f"invalid domain name: {_shown(name)}")
    return ascii_name


def _is_atext(ch: str) -> bool:
    if ch in _ATEXT_ASCII:
        return True
    # UTF8-non-ascii (RFC 6532 §3.2), but never a control or an unassigned/surrogate
    # code point: those are how homograph and log-injection tricks start.
    return ord(ch) > 0x7F and unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def _is_dot_atom(text: str) -> bool:
    """RFC 5322 §3.4.1 dot-atom-text: atoms of atext joined by single dots."""
    return bool(text) and all(
        atom and all(_is_atext(ch) for ch in atom) for atom in text.split(".")
    )


def _unquote(local: str) -> str:
    """The content of an RFC 5321 Quoted-string (quoted pairs undone), or InvalidAddress."""
    out: list[str] = []
    i, end = 1, len(local) - 1
    while i < end:
        ch = local[i]
        if ch == "\\":
            i += 1
            if i >= end:
                raise InvalidAddress("invalid quoted local part")
            ch = local[i]
        elif ch == '"':
            raise InvalidAddress("invalid quoted local part")
        # RFC 5321 §4.1.2 qtextSMTP / quoted-pairSMTP: printable ASCII and space (and
        # UTF-8, RFC 6531 §3.3); never a control character.
        if ch != " " and not (" " < ch < "\x7f") and not _is_atext(ch):
            raise InvalidAddress("control character in local part")
        out.append(ch)
        i += 1
    return "".join(out)


def normalize_local_part(local: str) -> str:
    """The canonical form of a local part (see the module docstring)."""
    if len(local) > MAX_INPUT_CHARACTERS:
        raise InvalidAddress("local part is too long")
    quoted = len(local) >= 2 and local.startswith('"') and local.endswith('"')
    text = _unquote(local) if quoted else local
    text = unicodedata.normalize("NFC", text).lower()
    if _is_dot_atom(text):
        canonical = text
    elif quoted and text:
        canonical = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        raise InvalidAddress(f"invalid local part: {_shown(local)}")
    if len(canonical.encode("utf-8")) > MAX_LOCAL_OCTETS:
        raise InvalidAddress("local part is too long")
    return canonical


def normalize_address(address: str) -> str:
    """The canonical ``local@domain`` form of an address; InvalidAddress if it is none."""
    text = address.strip()
    if len(text) > MAX_INPUT_CHARACTERS:
        raise InvalidAddress("address is too long")
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidAddress(f"invalid address: {_shown(address)}")
    canonical = f"{normalize_local_part(local)}@{normalize_domain(domain)}"
    if len(canonical.encode("utf-8")) > MAX_ADDRESS_OCTETS:
        raise InvalidAddress("address is too long")
    return canonical


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain) of the canonical form of `address`."""
    local, _, domain = normalize_address(address).rpartition("@")
    return local, domain


def normalize_alias_source(source: str) -> str:
    """An alias source: an address, or ``@domain`` for a catch-all."""
    text = source.strip()
    if text.startswith("@"):
        return "@" + normalize_domain(text[1:])
    return normalize_address(text)
