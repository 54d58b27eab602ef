"""The flags a session's client was told in FLAGS for the selected mailbox.

RFC 9051 §7.3.5: FLAGS names the flags applicable in the mailbox, and a FETCH must not
show the client a keyword it has not seen there: an updated FLAGS (and the untagged
`OK [PERMANENTFLAGS ...]` of §7.1, where flags may be stored) goes first. Keywords reach
a session by its own STORE, by another session's STORE or by a message that arrives
carrying them (APPEND, delivery), so the check is made where FETCH responses are built
(`Session.announce_flags`), not where keywords are stored. SELECT announces the system
flags; keywords already in the mailbox are announced before the first FETCH that shows
them, which costs SELECT no query.

Must not: know sessions or the store; it only keeps a set and formats the two lines.
"""

from __future__ import annotations

from collections.abc import Collection

# RFC 9051 §2.3.2 system flags, in the order SELECT has always listed them.
_SYSTEM = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class AnnouncedFlags:
    """What FLAGS told the client of one selected mailbox (see the module docstring)."""

    __slots__ = ("_keywords", "_known", "full", "read_only")

    def __init__(self, *, read_only: bool) -> None:
        self.read_only = read_only
        # \Recent (RFC 3501 §2.3.2) is a system flag a client never needs told of.
        self._known: set[str] = {*_SYSTEM, "\\Recent"}
        self._keywords: list[str] = []
        # The mailbox can take no new keyword (the store said so, `mark_full`).
        self.full = False

    def lines(self) -> list[bytes]:
        """The untagged FLAGS and PERMANENTFLAGS payloads (without ``* `` and CRLF)."""
        names = " ".join((*_SYSTEM, *self._keywords)).encode("utf-8", "replace")
        flags = b"FLAGS (" + names + b")"
        if self.read_only:
            return [flags, b"OK [PERMANENTFLAGS ()] Read-only mailbox"]
        if self.full:
            # RFC 9051 §7.1: "\*" says new keywords can be created; not at the limit.
            return [flags, b"OK [PERMANENTFLAGS (" + names + b")] No new keywords"]
        return [flags, b"OK [PERMANENTFLAGS (" + names + b" \\*)] Flags permitted"]

    def mark_full(self) -> list[bytes]:
        """The lines to send once a store refused a keyword because the mailbox holds as
        many as it may: PERMANENTFLAGS without ``\\*`` (none if already sent)."""
        if self.full or self.read_only:
            return []
        self.full = True
        return self.lines()

    def new(self, flags: Collection[str]) -> list[bytes]:
        """The lines to send before a FETCH showing `flags`: none when all were told
        (one subset test, so calling this for every FETCH line costs little)."""
        if self._known.issuperset(flags):
            return []
        fresh = sorted(set(flags) - self._known)
        self._known.update(fresh)
        self._keywords.extend(fresh)
        return self.lines()
