"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3), for IMAP4rev1 sessions.

IMAP4rev1 clients that did not enable UTF8=ACCEPT (RFC 6855) or IMAP4rev2 (RFC 9051 §5.1:
names are UTF-8) send and expect mailbox names in modified UTF-7: printable US-ASCII stands
for itself except "&", which is written "&-"; anything else is UTF-16BE in modified base64
("," instead of "/", no padding) between "&" and "-". The server decodes names from such
clients with `decode` and encodes names it sends with `encode`. Strict: `decode` refuses
every form RFC 3501 forbids (raw 8-bit or control characters, base64 for printable ASCII,
null shifts such as "&AGE-&AGE-", non-zero padding bits, broken surrogates), so each name
has exactly one spelling.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

_B64_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


class Mutf7Error(ValueError):
    """The name is not valid modified UTF-7; the message says why (safe to show)."""


def _encode_run(run: str) -> str:
    try:
        raw = run.encode("utf-16-be")
    except UnicodeEncodeError:
        raise Mutf7Error("name contains a lone surrogate") from None
    return "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"


def encode(name: str) -> str:
    """The modified UTF-7 form of a Unicode mailbox name."""
    out: list[str] = []
    run_start = -1
    for i, ch in enumerate(name):
        if " " <= ch <= "~":
            if run_start >= 0:
                out.append(_encode_run(name[run_start:i]))
                run_start = -1
            out.append("&-" if ch == "&" else ch)
        elif run_start < 0:
            run_start = i
    if run_start >= 0:
        out.append(_encode_run(name[run_start:]))
    return "".join(out)


def decode(name: str | bytes) -> str:
    """The Unicode name for a modified UTF-7 one; raises `Mutf7Error` if it is invalid."""
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            raise Mutf7Error("8-bit characters in a modified UTF-7 name") from None
    out: list[str] = []
    i = 0
    n = len(name)
    last_shift_end = -1
    while i < n:
        ch = name[i]
        if ch == "&":
            j = name.find("-", i + 1)
            if j < 0:
                raise Mutf7Error("unterminated base64 section")
            if j == i + 1:
                out.append("&")
                i = j + 1
                continue
            if last_shift_end == i:
                raise Mutf7Error("adjacent base64 sections (null shift)")
            segment = name[i + 1 : j]
            out.append(_decode_segment(segment))
            i = j + 1
            last_shift_end = i
        elif " " <= ch <= "~":
            out.append(ch)
            i += 1
        else:
            raise Mutf7Error("character not allowed in a modified UTF-7 name")
    return "".join(out)


def _decode_segment(segment: str) -> str:
    if not set(segment) <= _B64_ALPHABET or len(segment) % 4 == 1:
        raise Mutf7Error("invalid modified base64")
    b64 = segment.replace(",", "/")
    try:
        raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise Mutf7Error("invalid modified base64") from None
    if len(raw) % 2 or not raw:
        raise Mutf7Error("base64 section is not UTF-16")
    try:
        text = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        raise Mutf7Error("base64 section is not valid UTF-16") from None
    if any(" " <= ch <= "~" for ch in text):
        raise Mutf7Error("printable ASCII must not be base64-encoded")
    # Non-zero padding bits would give a second spelling of the same name.
    if _encode_run(text)[1:-1] != segment:
        raise Mutf7Error("non-canonical base64")
    return text
