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


class Base64Decoder:
    """`decode_base64` piecewise: fed in any pieces, it gives the same bytes in total,
    holding back at most three sextets between pieces (a large BINARY[] is streamed)."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        clean = self._carry + data.translate(None, _NOT_BASE64)
        whole = len(clean) - len(clean) % 4
        self._carry = clean[whole:]
        return binascii.a2b_base64(clean[:whole]) if whole else b""

    def end(self) -> bytes:
        clean, self._carry = self._carry, b""
        return decode_base64(clean) if clean else b""


# Bytes of one encoded line held back before it is cut where no escape, soft line break
# or trailing whitespace can straddle the cut.
_QP_CARRY_MAX = 64 * 1024


class QuotedPrintableDecoder:
    """`decode_quoted_printable` piecewise: each piece is decoded up to its last line
    break (the decoding is line by line), the rest carried into the next. A line longer
    than `_QP_CARRY_MAX` is cut after a byte that ends no escape (``=XX``), soft line
    break or trailing whitespace, so the carry stays bounded; the same bytes result."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        data = self._carry + data
        cut = data.rfind(b"\n") + 1
        if len(data) - cut > _QP_CARRY_MAX:
            soft = _soft_break_cr(data, cut)
            if soft >= 0:
                # binascii reads "=" CR as a soft line break that lasts to the next LF:
                # the rest of the line decodes to nothing, so only "=" CR is carried.
                cut = _qp_cut(data[:soft], cut)
                self._carry = data[cut:soft] + b"=\r"
                return decode_quoted_printable(data[:cut]) if cut else b""
            cut = _qp_cut(data, cut)
        self._carry = data[cut:]
        return decode_quoted_printable(data[:cut]) if cut else b""

    def end(self) -> bytes:
        data, self._carry = self._carry, b""
        return decode_quoted_printable(data) if data else b""


def _soft_break_cr(data: bytes, start: int) -> int:
    """Index of the first "=" CR after `start` (a line's start) that binascii takes for a
    soft line break, or -1: "==" is read as an escaped "=", so an "=" that ends a run of
    even length is not one."""
    at = data.find(b"=\r", start)
    while at >= 0:
        first = at
        while first > start and data[first - 1] == 0x3D:  # "="
            first -= 1
        if (at - first) % 2 == 0:
            return at
        at = data.find(b"=\r", at + 1)
    return -1


def _qp_cut(data: bytes, floor: int) -> int:
    """A place after `floor` (a line's start) to cut a long quoted-printable line: after
    a byte that is not whitespace, CR or "=" and does not follow "=", so no ``=XX``
    escape, soft line break or trailing whitespace is split. Without one among the last
    64 bytes, the line is carried whole (`floor`) up to 4 × `_QP_CARRY_MAX`, and cut at
    its end past that (only input made to defeat this has such runs of "=" and blanks;
    it may then decode differently from `decode_quoted_printable` at the cut, but the
    same in every pass, so a measured length still holds)."""
    for p in range(len(data), max(floor, len(data) - 64), -1):
        if data[p - 1] not in b" \t\r=" and data[p - 2 : p - 1] != b"=":
            return p
    return floor if len(data) - floor <= 4 * _QP_CARRY_MAX else len(data)
