"""The server's thin layer over the core's serialisers (`proto.imap.responses`).

Strings, literals, dates, sequence sets and tagged lines are built by the core, in one
place; this module adds only what the server decides: literal8 only when the bytes need
it, flag lists in a stable order that tolerate 8-bit keywords, response text made safe.

Must not: know about sessions, mailboxes or the store; echo client bytes unchecked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pillarbox.proto.imap import responses
from pillarbox.rules.printable import printable_ascii


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A quoted string when possible, else a literal (RFC 9051 §4.3; UTF-8 may be quoted
    once IMAP4rev2 or UTF8=ACCEPT is enabled, RFC 6855 §3)."""
    return responses.string(value, utf8=utf8)


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """A literal; ``~{n}`` (literal8, RFC 3516) only when `binary` and the data holds
    NUL, since many IMAP4rev1 clients cannot read literal8.

    A plain literal cannot carry NUL (RFC 9051 §4.3, §9: CHAR8 is %x01-ff), and clients
    that read one into a C string saw BODY[1] of a binary part that starts with NUL as
    "". So outside BINARY[] each NUL goes as 0x80, as Dovecot does: the size stays the
    same (RFC822.SIZE, partial fetches and BODYSTRUCTURE sizes still hold), and BINARY[]
    gives the exact octets."""
    if b"\x00" in data:
        if binary:
            return responses.literal(data, binary=True)
        data = data.replace(b"\x00", b"\x80")
    return responses.literal(data)


# Formatted flag lists by flag set: a mailbox has few distinct sets (the store hands out
# one shared frozenset per system-flag combination), so a 100,000-line FLAGS fetch formats
# each only once. Bounded: cleared when full (keyword-heavy mailboxes just re-format).
_FLAG_LISTS: dict[frozenset[str], bytes] = {}
_FLAG_LISTS_MAX = 4096


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label)`` — system flags first, in a stable order."""
    if isinstance(flags, frozenset):
        cached = _FLAG_LISTS.get(flags)
        if cached is not None:
            return cached
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    text = b"(" + " ".join(ordered).encode("utf-8", "replace") + b")"
    if isinstance(flags, frozenset):
        if len(_FLAG_LISTS) >= _FLAG_LISTS_MAX:
            _FLAG_LISTS.clear()
        _FLAG_LISTS[flags] = text
    return text


def date_time(value: datetime) -> bytes:
    """RFC 9051 §9 date-time: ``"17-Jul-1996 02:44:25 -0700"``; naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return responses.date_time(value)


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Compress numbers into ``1:3,7,9:10`` (RFC 9051 §9 sequence-set); b"" if none."""
    nums = list(numbers)
    return responses.sequence_set(nums) if nums else b""


def safe_text(text: str) -> bytes:
    """Human-readable response text: printable ASCII only, never CR/LF (RFC 9051 §9 text)."""
    return printable_ascii(text).encode("ascii")


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK [CODE] text``, the text made safe first."""
    return responses.tagged(tag, status, safe_text(text), code)


def untagged(data: bytes) -> bytes:
    return b"* " + data + b"\r\n"
