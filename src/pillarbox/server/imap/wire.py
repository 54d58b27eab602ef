"""Small IMAP serialisation helpers the server needs beyond the core's response builders.

Owns the byte forms of values the server computes: strings (quoted or literal), flag
lists, sequence sets (compressed ranges for ESEARCH ALL, COPYUID, APPENDUID), dates
(RFC 9051 §9 date-time), and the untagged and tagged lines built from them.

Must not: know about sessions, mailboxes or the store; echo client bytes unchecked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# RFC 9051 §9 atom-specials plus the characters that would end a quoted string.
_QUOTED_SAFE = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\")}


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A quoted string when possible, else a literal (RFC 9051 §4.3).

    With `utf8` (IMAP4rev2 or UTF8=ACCEPT enabled) a quoted string may carry UTF-8
    (RFC 9051 §9 QUOTED-CHAR, RFC 6855 §3); otherwise 8-bit data goes as a literal.
    """
    data = value.encode("utf-8") if isinstance(value, str) else value
    if utf8 and not data.isascii():
        try:
            data.decode("utf-8")
            simple = all(b >= 0x80 or b in _QUOTED_SAFE or b in (0x22, 0x5C) for b in data)
        except UnicodeDecodeError:
            simple = False
        if simple and len(data) < 1024:
            return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    if all(b in _QUOTED_SAFE or b in (0x22, 0x5C) for b in data) and len(data) < 1024:
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


def nstring(value: str | bytes | None) -> bytes:
    return b"NIL" if value is None else string(value)


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """A literal; ``~{n}`` (literal8, RFC 3516) when the data holds NUL and `binary`."""
    if binary and b"\x00" in data:
        return b"~{%d}\r\n" % len(data) + data
    return b"{%d}\r\n" % len(data) + data


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label)`` — system flags first, in a stable order."""
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    return b"(" + " ".join(ordered).encode("utf-8", "replace") + b")"


def date_time(value: datetime) -> bytes:
    """RFC 9051 §9 date-time: ``"17-Jul-1996 02:44:25 -0700"``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    text = (
        f'"{value.day:2d}-{_MONTHS[value.month - 1]}-{value.year:04d} '
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} "
        f'{sign}{minutes // 60:02d}{minutes % 60:02d}"'
    )
    return text.encode("ascii")


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Compress ascending numbers into ``1:3,7,9:10`` (RFC 9051 §9 sequence-set)."""
    out: list[str] = []
    start = prev = -1
    for n in sorted(set(numbers)):
        if n == prev + 1 and start != -1:
            prev = n
            continue
        if start != -1:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if start != -1:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out).encode("ascii")


def uid_ranges(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Ascending numbers as inclusive ranges (for store UID keys)."""
    out: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def safe_text(text: str) -> bytes:
    """Human-readable response text: printable ASCII only, never CR/LF (RFC 9051 §9 text)."""
    return "".join(c if " " <= c < "\x7f" else "?" for c in text).encode("ascii")


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK [CODE] text``."""
    head = f"{tag} {status} "
    if code:
        head += f"[{code}] "
    return head.encode("ascii", "replace") + safe_text(text) + b"\r\n"


def untagged(data: bytes) -> bytes:
    return b"* " + data + b"\r\n"
