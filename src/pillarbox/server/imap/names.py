"""Mailbox names on the wire: modified UTF-7 for IMAP4rev1, UTF-8 otherwise; LIST patterns.

RFC 3501 §5.1.3 (modified UTF-7), RFC 9051 §5.1 and §6.3.9 (UTF-8 names, wildcards
``*`` and ``%``), RFC 6855 (UTF8=ACCEPT). The store keeps names in UTF-8 with "/".

Must not: decide whether a name is acceptable (services.mailbox.normalize_name does) or
look anything up. An undecodable name becomes `BadName`, refused before it reaches the
store.
"""

from __future__ import annotations

import re

from pillarbox.model import HIERARCHY_SEPARATOR
from pillarbox.proto.imap import mutf7


class BadName(ValueError):
    """The wire name is not valid modified UTF-7."""


def decode_mutf7(name: str) -> str:
    """RFC 3501 §5.1.3 decoding (the core's `mutf7`); raw 8-bit names from IMAP4rev1
    clients that never enabled UTF-8 are taken as the UTF-8 they are."""
    if "&" not in name and not name.isascii():
        return name
    try:
        return mutf7.decode(name)
    except mutf7.Mutf7Error:
        raise BadName("invalid modified UTF-7") from None


def encode_mutf7(name: str) -> str:
    return mutf7.encode(name)


def from_wire(name: str, *, utf8: bool) -> str:
    return name if utf8 else decode_mutf7(name)


def pattern_from_wire(pattern: str, *, utf8: bool) -> str:
    """A LIST/LSUB reference or pattern in store form. One that is not valid modified
    UTF-7 cannot name a stored mailbox, but it is still a pattern to answer (with no
    match, OK), not an error: it is taken literally."""
    try:
        return from_wire(pattern, utf8=utf8)
    except BadName:
        return pattern


def to_wire(name: str, *, utf8: bool) -> str:
    return name if utf8 else encode_mutf7(name)


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """LIST reference + pattern as a regex over store names (RFC 9051 §6.3.9).

    ``*`` matches anything, ``%`` anything but the separator. INBOX matches
    case-insensitively (RFC 9051 §5.1: "INBOX" is case-insensitive, so "Inbox*" lists
    INBOX and its children just as "INBOX*" does).
    """
    full = pattern
    if reference and not pattern.startswith(HIERARCHY_SEPARATOR):
        full = reference + pattern
    prefix = ""
    if full[:5].upper() == "INBOX":
        prefix, full = "(?i:INBOX)", full[5:]
    out = [prefix]
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(HIERARCHY_SEPARATOR)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)
