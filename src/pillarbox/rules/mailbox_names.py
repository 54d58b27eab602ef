"""Which mailbox names are acceptable, and their canonical form (RFC 9051 §5.1).

Every name a client or an operator sends goes through `normalize_mailbox_name` before
anything is looked up or stored, so no name (``..``, ``/x``, ``%``, NUL, very long) can
reach another account's mailboxes or confuse a later listing, and the store compares
names exactly.

INBOX is case-insensitive (RFC 9051 §5.1, also as the first level of a child name);
``/`` separates levels. Refused: empty names or levels (``a//b``, a leading ``/``),
``.``/``..`` levels, the LIST wildcards ``%`` and ``*`` (RFC 9051 §5.1 advises against
them), control characters including NUL and C1, names that are not valid Unicode, levels
that start or end with a space, and over-long or over-deep names. A trailing separator is
dropped (RFC 9051 §6.3.4: "foo/" declares the intent to create children of "foo").
"""

from __future__ import annotations

from pillarbox.model import HIERARCHY_SEPARATOR

SEP = HIERARCHY_SEPARATOR
# Long enough for any real folder tree, short enough that a hostile name cannot blow up
# an index or a log line.
MAX_NAME_LENGTH = 512
MAX_COMPONENT_LENGTH = 255
MAX_DEPTH = 32
INBOX = "INBOX"


class BadMailboxName(ValueError):
    """The name is not acceptable as a mailbox name; the message says why."""


def is_inbox(component: str) -> bool:
    return component.upper() == INBOX


def normalize_mailbox_name(name: str) -> str:
    """The canonical form of a mailbox name, or `BadMailboxName`."""
    if not isinstance(name, str) or not name:
        raise BadMailboxName("Mailbox name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise BadMailboxName("Mailbox name is too long")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMailboxName("Mailbox name is not valid UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 for c in name):
        raise BadMailboxName("Mailbox name contains control characters")
    if "%" in name or "*" in name:
        raise BadMailboxName("Mailbox name contains wildcards")
    if name.endswith(SEP) and len(name) > 1:
        name = name.rstrip(SEP)
    parts = name.split(SEP)
    if len(parts) > MAX_DEPTH:
        raise BadMailboxName("Mailbox name is nested too deeply")
    for part in parts:
        if not part:
            raise BadMailboxName("Mailbox name has an empty level")
        if part in (".", ".."):
            raise BadMailboxName("Mailbox name has a '.' or '..' level")
        if len(part) > MAX_COMPONENT_LENGTH:
            raise BadMailboxName("Mailbox name level is too long")
        if part != part.strip():
            raise BadMailboxName("Mailbox name level starts or ends with a space")
    if is_inbox(parts[0]):
        parts[0] = INBOX
    return SEP.join(parts)


def parent_names(name: str) -> list[str]:
    """ "a/b/c" → ["a", "a/b"]: the levels CREATE must make exist first (RFC 9051 §6.3.4)."""
    parts = name.split(SEP)
    return [SEP.join(parts[:i]) for i in range(1, len(parts))]


def is_inferior(name: str, of: str) -> bool:
    """`name` lies below `of` in the hierarchy (renaming `of` into it is refused)."""
    return name.startswith(of + SEP)
