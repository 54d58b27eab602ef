"""Charset decoding for search text: MIME charset names to Python codecs, never failing.

Owns the mapping from MIME charset labels (RFC 2046 §4.1.2, RFC 2978) to Python codecs
and the fallback rules for mail that lies about its charset. It must not be used for
anything sent back to a client: IMAP serves raw bytes; this is only for SEARCH text,
previews and decoded header values.
"""

from __future__ import annotations

import codecs
from functools import lru_cache

# Labels whose real-world use is a superset of the registered charset (as in the WHATWG
# Encoding Standard): decoding with the superset never loses text the sender meant.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "iso_8859-1": "cp1252",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "unicode-1-1-utf-7": "utf-7",
}

# Labels that promise nothing about 8-bit bytes: decode as if undeclared.
_UNDECLARED = frozenset({"us-ascii", "ascii", "x-unknown", "unknown-8bit", "default"})

# Codecs Python treats as text encodings that no sender means as a mail charset;
# some interpret backslash escapes, so they are refused outright.
_REFUSED = frozenset(
    {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "mbcs", "oem", "undefined"}
)


@lru_cache(maxsize=256)
def codec_for(charset: str | None) -> str | None:
    """The Python codec name for a MIME charset label, or None if unknown."""
    if not charset:
        return None
    label = charset.strip().strip('"').lower()
    # RFC 2231 §5: a language may follow the charset in encoded-words ("utf-8*en").
    label = label.split("*", 1)[0]
    if label in _UNDECLARED:
        return None
    label = _SUPERSETS.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if info.name.replace("-", "_") in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text in the named charset; unknown, absent or US-ASCII try UTF-8, then cp1252.

    Never raises: undecodable bytes become U+FFFD, so one bad part cannot keep a message
    out of the store.
    """
    codec = codec_for(charset)
    if codec is not None:
        try:
            return data.decode(codec, errors="replace")
        except (LookupError, ValueError, TypeError):  # codec quirks on odd input
            pass
    if data.isascii():
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
