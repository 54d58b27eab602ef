"""The base subject of RFC 5256 §2.1, which SORT SUBJECT and THREAD compare.

Works on a subject already decoded (the store keeps the decoded Subject, so step (1)'s
RFC 2047 decoding happened at delivery); the steps below are the RFC's, in its order,
case-insensitive. `is_reply_or_forward` says whether anything but whitespace and
"(fwd)" trailers was removed — THREAD=REFERENCES needs that (RFC 5256 §3, step (5)(C)).

Must not: import anything outside the standard library; it is pure text work.
"""

from __future__ import annotations

import re
from typing import Final

_WSP_RUN: Final = re.compile(r"[ \t\r\n]+")
# subj-trailer = "(fwd)" / WSP
_TRAILER: Final = re.compile(r"(?:\(fwd\)|[ \t])+\Z", re.IGNORECASE)
# subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB: Final = r"\[[^\[\]]*\][ \t]*"
# subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
# subj-leader = (*subj-blob subj-refwd) / WSP
_LEADER: Final = re.compile(
    rf"(?:(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:|[ \t]+)", re.IGNORECASE
)
_BLOB_PREFIX: Final = re.compile(_BLOB)
_FWD_WRAP: Final = re.compile(r"\A\[fwd:(.*)\]\Z", re.IGNORECASE | re.DOTALL)


def base_subject(subject: str) -> str:
    """The base subject (RFC 5256 §2.1), upper-cased for i;ascii-casemap comparison."""
    return _extract(subject)[0]


def is_reply_or_forward(subject: str) -> bool:
    """True if extracting the base subject removed a reply/forward marker (RFC 5256 §2.1
    note: a subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper)."""
    return _extract(subject)[1]


def split_subject(subject: str) -> tuple[str, bool]:
    """`base_subject` and `is_reply_or_forward` in one pass (THREAD needs both)."""
    return _extract(subject)


def _extract(subject: str) -> tuple[str, bool]:
    # (1) tabs and continuations to space, runs of spaces to one space
    text = _WSP_RUN.sub(" ", subject)
    marked = False
    while True:
        # (2) remove trailing subj-trailer, repeatedly
        m = _TRAILER.search(text)
        if m is not None:
            if "(" in m.group(0):
                marked = True
            text = text[: m.start()]
        # (5) repeat (3) and (4) until nothing more matches
        while True:
            changed = False
            # (3) remove subj-leader prefixes
            m = _LEADER.match(text)
            while m is not None and m.end() > 0:
                if m.group(0).strip():
                    marked = True
                text = text[m.end() :]
                changed = True
                m = _LEADER.match(text)
            # (4) a leading subj-blob, if what remains is not empty
            m = _BLOB_PREFIX.match(text)
            if m is not None and text[m.end() :].strip():
                text = text[m.end() :]
                changed = True
            if not changed:
                break
        # (6) "[fwd:" ... "]" wrapper: unwrap and start again at (2)
        m = _FWD_WRAP.match(text)
        if m is None:
            break
        text = m.group(1)
        marked = True
    # (7) the base subject; i;ascii-casemap compares ASCII letters case-insensitively
    return _ascii_upper(text), marked


_UPPER: Final = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}


def _ascii_upper(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): a-z become A-Z, nothing else changes."""
    return text.translate(_UPPER)


def casemap(text: str) -> str:
    """The i;ascii-casemap form of `text`, the default collation of SORT (RFC 5256 §2.3)."""
    return _ascii_upper(text)
