"""IMAP string atoms for the precomputed FETCH items: quoted strings, literals and NIL.

Owns the one rule for turning a header-derived byte string into IMAP wire syntax
(RFC 9051 §4.3 strings, §4.5 NIL). It must not decode or re-encode anything: IMAP sends
header values raw, so a value either fits in a quoted string or goes as a literal.
"""

from __future__ import annotations

NIL = b"NIL"


def quoted(value: bytes) -> bytes:
    """A quoted string with `\\` and `"` escaped (RFC 9051 §4.3 quoted-specials).

    The caller guarantees `value` holds only 7-bit bytes other than CR, LF and NUL.
    """
    if b"\\" in value or b'"' in value:
        value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + value + b'"'


def string(value: bytes) -> bytes:
    """A quoted string, or a literal `{n}\\r\\n...` when the value cannot be quoted.

    RFC 9051 §4.3: a quoted string holds TEXT-CHARs only (no CR, LF); we also send any
    8-bit value as a literal so a client that speaks only IMAP4rev1 reads it intact. NUL
    cannot appear even in a (non-binary) literal (RFC 9051 §9 CHAR8), so it is dropped.
    """
    if b"\x00" in value:
        value = value.replace(b"\x00", b"")
    if value.isascii() and b"\r" not in value and b"\n" not in value:
        return quoted(value)
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """`string` or NIL for an absent value (RFC 9051 §9 nstring)."""
    return NIL if value is None else string(value)
