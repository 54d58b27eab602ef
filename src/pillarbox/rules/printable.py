"""Client-supplied text made safe to echo in a reply or write to a log.

A client chooses the bytes of its EHLO name, its SASL authorisation id, its mailbox
names; echoed raw they can carry terminal escapes (ESC, VT, DEL) into an operator's
terminal, or forge a line in a log. Replies get printable ASCII with a stand-in for the
rest (a reply's text is ASCII, RFC 5321 §4.2, RFC 9051 §9 ``text``); logs get escapes, so
the operator still sees exactly which bytes came.
"""

from __future__ import annotations

import re

_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # C0 but TAB, DEL, C1


def printable_ascii(text: str, replacement: str = "?") -> str:
    """`text` with every character outside printable ASCII (space to ``~``) replaced."""
    return _NOT_PRINTABLE.sub(replacement, text)


def escape_controls(text: str) -> str:
    """`text` with control characters (line breaks too) as ``\\xNN`` escapes; other
    characters, non-ASCII letters included, unchanged."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
