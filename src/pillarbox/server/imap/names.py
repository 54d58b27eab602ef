"""Mailbox names on the wire: modified UTF-7 for IMAP4rev1, UTF-8 otherwise; LIST patterns.

RFC 3501 §5.1.3 (modified UTF-7), RFC 9051 §5.1 and §6.3.9 (UTF-8 names, wildcards
``*`` and ``%``), RFC 6855 (UTF8=ACCEPT). The store keeps names in UTF-8 with "/".

Must not: decide whether a name is acceptable (services.mailbox.normalize_name does) or
look anything up. An undecodable name becomes `BadName`, refused before it reaches the
store.
"""

from __future__ import annotations

import base64
import re

from pillarbox.store.model import HIERARCHY_SEPARATOR


class BadName(ValueError):
    """The wire name is not valid modified UTF-7."""


def decode_mutf7(name: str) -> str:
    """RFC 3501 §5.1.3: "&" starts a base64 run of UTF-16BE ("," for "/"), "&-" is "&"."""
    if "&" not in name:
        return name  # raw 8-bit names from IMAP4rev1 clients are taken as UTF-8
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise BadName("unterminated modified UTF-7 run")
        run = name[i + 1 : end]
        if not run:
            out.append("&")
        else:
            if not re.fullmatch(r"[A-Za-z0-9+,]+", run):
                raise BadName("invalid modified UTF-7 run")
            b64 = run.replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                raw = base64.b64decode(b64, validate=True)
                text = raw.decode("utf-16-be")
            except (ValueError, UnicodeDecodeError):
                raise BadName("invalid modified UTF-7 run") from None
            if any(0x20 <= ord(ch) < 0x7F for ch in text):
                raise BadName("printable ASCII inside a modified UTF-7 run")
            out.append(text)
        i = end + 1
    return "".join(out)


def encode_mutf7(name: str) -> str:
    out: list[str] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) < 0x7F:
            close_run()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    close_run()
    return "".join(out)


def from_wire(name: str, *, utf8: bool) -> str:
    return name if utf8 else decode_mutf7(name)


def to_wire(name: str, *, utf8: bool) -> str:
    return name if utf8 else encode_mutf7(name)


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """LIST reference + pattern as a regex over store names (RFC 9051 §6.3.9).

    ``*`` matches anything, ``%`` anything but the separator. INBOX matches
    case-insensitively.
    """
    full = pattern
    if reference and not pattern.startswith(HIERARCHY_SEPARATOR):
        full = reference + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(HIERARCHY_SEPARATOR)}]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if re.match(r"(?i)inbox(?=$|/)", full):
        body = "(?i:INBOX)" + body[5:] if full[:5].isalpha() else body
    return re.compile(body + r"\Z", re.DOTALL)
