"""Decoding header values for search: RFC 2047 encoded-words and raw 8-bit text.

Owns turning a raw header value into the text a user would search for. It must not be
used for anything sent to IMAP clients (ENVELOPE and BODYSTRUCTURE carry raw bytes).
Unknown charsets and broken encodings degrade to best-effort text, never an exception.
"""

from __future__ import annotations

import binascii
import re

from pillarbox.message.charsets import decode_bytes

# RFC 2047 §2: =?charset?encoding?encoded-text?=; the text has no "?" and no spaces.
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_WSP_ONLY = re.compile(rb"[ \t\r\n]*\Z")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _decode_q(text: bytes) -> bytes:
    # RFC 2047 §4.2: "_" is a space, "=XX" a byte.
    text = text.replace(b"_", b" ")
    return _Q_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), text)


def _decode_b(text: bytes) -> bytes:
    text = _B64_JUNK.sub(b"", text)
    if len(text) % 4 == 1:
        text = text[:-1]
    text += b"=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return b""


def decode_header_value(raw: bytes) -> str:
    """Decode encoded-words in an (unfolded) header value; other bytes as UTF-8/cp1252.

    RFC 2047 §6.2: whitespace between two adjacent encoded-words is dropped. Adjacent
    words in the same charset are joined before decoding so a multi-byte character
    split across words survives.
    """
    if b"=?" not in raw:
        return decode_bytes(raw, None)
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: bytes | None = None
    pos = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset.decode("ascii", "replace")))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(raw):
        gap = raw[pos : match.start()]
        if not (last_was_word and _WSP_ONLY.match(gap)):
            flush()
            if gap:
                out.append(decode_bytes(gap, None))
        charset = match.group(1).split(b"*", 1)[0].lower()
        text = match.group(3)
        decoded = _decode_b(text) if match.group(2) in b"bB" else _decode_q(text)
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending_charset = charset
        pending += decoded
        pos = match.end()
        last_was_word = True
    flush()
    if pos < len(raw):
        out.append(decode_bytes(raw[pos:], None))
    return "".join(out)
