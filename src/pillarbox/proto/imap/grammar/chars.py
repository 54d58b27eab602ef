"""The fixed facts of the IMAP lexicon: character classes, month names, numeric limits.

Kept apart from the reader because both directions need them: the reader scans with these
tables, and `pillarbox.proto.imap.responses` uses `ASTRING_CHAR` and `MONTHS` to decide how
to quote a string and to write a date-time, so what the server sends is what it would
accept. Each class is a 256-byte table indexed by the byte, the cheapest test per byte
Python offers. Everything follows RFC 9051 §9 unless a line names another RFC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MAX_NZ: Final = 0xFFFFFFFF  # RFC 9051 §9 nz-number
MAX_MODSEQ: Final = 0x7FFFFFFFFFFFFFFF  # RFC 7162 §7 mod-sequence-value (63 bits)


def _table(pred: Callable[[int], bool]) -> bytes:
    return bytes(1 if pred(b) else 0 for b in range(256))


# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials
#              / resp-specials
_ATOM_SPECIALS: Final = frozenset(b'(){ %*"\\]')
ATOM_CHAR: Final = _table(lambda b: 0x20 < b < 0x7F and b not in _ATOM_SPECIALS)
ASTRING_CHAR: Final = _table(lambda b: bool(ATOM_CHAR[b]) or b == ord("]"))
LIST_CHAR: Final = _table(lambda b: bool(ASTRING_CHAR[b]) or b in b"%*")
TAG_CHAR: Final = _table(lambda b: bool(ASTRING_CHAR[b]) and b != ord("+"))
SEQ_CHAR: Final = _table(lambda b: b in b"0123456789:,*$")
FETCH_NAME_CHAR: Final = _table(lambda b: (chr(b).isalnum() and b < 0x80) or b in b".-")
DIGIT: Final = _table(lambda b: 0x30 <= b <= 0x39)
# Generic extension values: anything but SP, parens, quote, brace and CTL.
GENERIC_CHAR: Final = _table(lambda b: 0x20 < b < 0x7F and b not in b'(){"')

MONTHS: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
MONTH_NUM: Final = {m.encode(): i + 1 for i, m in enumerate(MONTHS)}

SP: Final = 0x20
LPAREN: Final = ord("(")
RPAREN: Final = ord(")")
DQUOTE: Final = ord('"')
BACKSLASH: Final = ord("\\")
LBRACE: Final = ord("{")
TILDE: Final = ord("~")
COLON: Final = ord(":")
MINUS: Final = ord("-")
