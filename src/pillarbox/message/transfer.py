"""Content-Transfer-Encoding decoding for BINARY[] (RFC 3516) and for search text.

Owns the RFC 2045 §6 mechanisms: identity (7bit, 8bit, binary), base64 (§6.8) and
quoted-printable (§6.7). Decoding is lenient about what real mail gets wrong (stray
characters, missing padding) but refuses mechanisms it does not know, because RFC 3516
§4.3 wants `NO [UNKNOWN-CTE]` then rather than a guess.
"""

from __future__ import annotations

import binascii
import re

IDENTITY = frozenset({"7bit", "8bit", "binary", ""})

# Every byte that is not in the base64 alphabet (RFC 2045 §6.8 says to ignore them).
_NOT_BASE64 = bytes(
    b for b in range(256) if not (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "+/"))
)


class UnknownTransferEncoding(ValueError):
    """The part's Content-Transfer-Encoding is not one we can decode (RFC 3516 §4.3)."""

    def __init__(self, cte: str) -> None:
        super().__init__(f"unknown Content-Transfer-Encoding {cte!r}")
        self.cte = cte


def decode_base64(data: bytes) -> bytes:
    """Decode base64, ignoring non-alphabet bytes and repairing missing padding."""
    clean = data.translate(None, _NOT_BASE64)
    if len(clean) % 4 == 1:
        clean = clean[:-1]  # a lone trailing sextet carries no whole byte
    clean += b"=" * (-len(clean) % 4)
    return binascii.a2b_base64(clean)


# Whitespace at the end of an encoded line, also after a soft line break's "=".
_TRAILING_WHITESPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")


def decode_quoted_printable(data: bytes) -> bytes:
    """Decode quoted-printable; malformed `=` sequences pass through unchanged.

    RFC 2045 §6.7 rule 3: whitespace at the end of an encoded line is not part of the
    data and is deleted, so ``=  CRLF`` is still a soft line break (rule 5); binascii
    keeps both, so it is removed first.
    """
    return binascii.a2b_qp(_TRAILING_WHITESPACE.sub(b"", data))


def decode_transfer(data: bytes, cte: str) -> bytes:
    """Undo a Content-Transfer-Encoding; raise `UnknownTransferEncoding` if unknown."""
    mechanism = cte.strip().lower()
    if mechanism in IDENTITY:
        return data
    if mechanism == "base64":
        return decode_base64(data)
    if mechanism == "quoted-printable":
        return decode_quoted_printable(data)
    raise UnknownTransferEncoding(cte)
