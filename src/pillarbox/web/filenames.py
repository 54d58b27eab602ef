"""Safe file names for downloaded attachments, and the Content-Disposition that carries them.

The name comes from the sender, so it is hostile: it may hold path separators
(``../../.bashrc``), control characters, a quote that ends the header parameter, a
CR LF that starts a new header field, a leading dot (a hidden file), a Windows device
name, or thousands of characters. `safe_filename` keeps what a person would recognise
and drops the rest; the browser is then told by RFC 6266 §4.1 ``attachment`` to save,
never to display, with the name twice: ``filename*`` in UTF-8 (RFC 8187 §3.2) for
browsers that read it, and an ASCII ``filename`` fallback (RFC 6266 §4.3).

Must not: trust the sender's media type to decide anything.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME = 120  # characters; most file systems allow 255 bytes
# Control characters, path separators and characters Windows forbids in names.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]+')
_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$", re.IGNORECASE)
_EXTENSIONS = {
    "text/plain": "txt",
    "text/html": "html",
    "message/rfc822": "eml",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
}


def safe_filename(name: str, mime_type: str = "application/octet-stream") -> str:
    """A name that is one plain file name on every system, never empty."""
    text = unicodedata.normalize("NFC", name)
    # Format characters (category Cf) include the bidirectional overrides that make
    # "cod.exe" display as "exe.doc"; none belongs in a file name.
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # a path: keep its last element
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split())  # other whitespace (tabs, U+2028...) as one space
    text = text.strip(" .")  # no hidden files, no trailing dot (Windows drops it)
    if _RESERVED.match(text):
        text = "_" + text
    if len(text) > MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = stem[: MAX_NAME - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            text = text[:MAX_NAME].rstrip(" .")
    if not text:
        text = "attachment." + _EXTENSIONS.get(mime_type.lower(), "bin")
    return text


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in decomposed if c.isascii() and c.isprintable() and c not in '"%')
    text = text.strip(" .")
    return text or "attachment"


def content_disposition(name: str, mime_type: str = "application/octet-stream") -> str:
    """``attachment; filename="..."; filename*=UTF-8''...`` for the name made safe."""
    safe = safe_filename(name, mime_type)
    fallback = _ascii_fallback(safe)
    encoded = quote(safe, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
