"""Mailbox names on the wire: modified UTF-7 for IMAP4rev1, UTF-8 otherwise; LIST patterns.

RFC 3501 §5.1.3 (modified UTF-7), RFC 9051 §5.1 and §6.3.9 (UTF-8 names, wildcards
``*`` and ``%``), RFC 6855 (UTF8=ACCEPT). The store keeps names in UTF-8 with "/".

Must not: decide whether a name is acceptable (services.mailbox.normalize_name does) or
look anything up. An undecodable name becomes `BadName`, refused before it reaches the
store.
"""

from __future__ import annotations

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


_STAR = "**"  # a wildcard token; two characters, so never equal to a name's character
_PERCENT = "%%"


class ListPattern:
    """LIST reference + pattern, matched against store names (RFC 9051 §6.3.9).

    ``*`` matches anything, ``%`` anything but the separator. INBOX matches
    case-insensitively (RFC 9051 §5.1: "INBOX" is case-insensitive, so "Inbox*" lists
    INBOX and its children just as "INBOX*" does).

    Matched by running the pattern as an NFA over the name (the set of pattern positions
    still alive), not with a backtracking regex: the client writes the pattern, and a
    regex such as ``.*a.*a.*a.*a.*a.*a.*a.*ab`` takes time exponential in the number of
    wildcards on a name like "aaaa…a" (19 s of CPU for eight of them on 60 "a"s).
    This costs at most len(name) × (wildcards + 1) steps.
    """

    __slots__ = ("_inbox", "_tokens")

    def __init__(self, reference: str, pattern: str) -> None:
        full = pattern
        if reference and not pattern.startswith(HIERARCHY_SEPARATOR):
            full = reference + pattern
        self._inbox = full[:5].upper() == "INBOX"
        if self._inbox:
            full = full[5:]
        tokens: list[str] = []
        for ch in full:
            if ch in "*%":
                kind = _STAR if ch == "*" else _PERCENT
                # A run of wildcards is one: "**" and "%%" are "*" and "%", and any run
                # with a "*" in it matches what "*" does.
                if tokens and tokens[-1] in (_STAR, _PERCENT):
                    if kind == _STAR:
                        tokens[-1] = _STAR
                    continue
                tokens.append(kind)
            else:
                tokens.append(ch)
        self._tokens = tuple(tokens)

    def match(self, name: str) -> bool:
        if self._inbox:
            head = name[:5]
            if not (head.isascii() and head.upper() == "INBOX"):
                return False
            name = name[5:]
        tokens = self._tokens
        if tokens == (_STAR,):  # "*" and "INBOX*": the common LIST of everything
            return True
        end = len(tokens)

        def closure(pos: int) -> tuple[int, ...]:
            # A wildcard may also match nothing: its position and the one after it.
            return (pos, pos + 1) if pos < end and tokens[pos] in (_STAR, _PERCENT) else (pos,)

        alive = set(closure(0))
        for ch in name:
            nxt: set[int] = set()
            for pos in alive:
                if pos == end:
                    continue
                token = tokens[pos]
                if token == _STAR or (token == _PERCENT and ch != HIERARCHY_SEPARATOR):
                    nxt.update(closure(pos))
                elif token == ch:
                    nxt.update(closure(pos + 1))
            if not nxt:
                return False
            alive = nxt
        return end in alive


def list_pattern(reference: str, pattern: str) -> ListPattern:
    """The matcher for a LIST/LSUB reference and pattern (see `ListPattern`)."""
    return ListPattern(reference, pattern)
