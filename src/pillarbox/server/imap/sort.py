"""SORT and UID SORT (RFC 5256 §4), ESORT (RFC 5267 §3), DISPLAYFROM/DISPLAYTO (RFC 5957),
THREAD and UID THREAD (RFC 5256 §4) with ORDEREDSUBJECT and REFERENCES.

The search and the ordering are the selected mailbox's (`SelectedMailbox.sort` and
`.thread`: one search, one store read of precomputed columns); this module checks the
charset and the algorithm and writes ``* SORT`` or, with a RETURN clause, ``* ESEARCH``
whose MIN/MAX are the first/last message in sort order and whose ALL keeps the sort order
(RFC 5267 §3.1); for THREAD, ``* THREAD`` with one parenthesised thread-list per thread
(`threads.thread_list`).

Must not: read message files, or report EXPUNGE (held back by the dispatcher for SORT and
THREAD by sequence number, as for SEARCH).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.search import CHARSETS
from pillarbox.server.imap.session import Session
from pillarbox.services import sorting
from pillarbox.services.threads import thread_list


async def sort(s: Session, cmd: c.Sort) -> bytes:
    selected = s.require_selected()
    if cmd.charset not in CHARSETS:
        raise CommandNo("Charset not supported", "BADCHARSET (US-ASCII UTF-8)")
    uids = await selected.sort(cmd.criteria, cmd.search, s.saved_search)
    view = selected.view
    numbers = uids if cmd.uid else [view.seq_of(u) or 0 for u in uids]
    if cmd.return_options is None:
        s.untagged(b"SORT" + b"".join(b" %d" % n for n in numbers))
    else:
        s.untagged(_esort(cmd, numbers, cmd.return_options or ("ALL",)))
    return wire.tagged(cmd.tag, "OK", "SORT completed")


async def thread(s: Session, cmd: c.Thread) -> bytes:
    selected = s.require_selected()
    if cmd.algorithm not in sorting.THREAD_ALGORITHMS:
        raise BadCommand("Unknown threading algorithm")  # RFC 5256 §4: BAD
    if cmd.charset not in CHARSETS:
        raise CommandNo("Charset not supported", "BADCHARSET (US-ASCII UTF-8)")
    threads = await selected.thread(cmd.algorithm, cmd.search, s.saved_search)
    view = selected.view
    numbers = _Numbers(view.seq_of) if not cmd.uid else _Numbers(None)
    s.untagged(
        b"THREAD"
        + (b" " if threads else b"")
        + b"".join(b"(" + thread_list(t, numbers) + b")" for t in threads)
    )
    return wire.tagged(cmd.tag, "OK", "THREAD completed")


class _Numbers(dict[int, int]):
    """UID -> what the client is sent: its sequence number, or the UID itself."""

    def __init__(self, seq_of: Callable[[int], int | None] | None) -> None:
        super().__init__()
        self._seq_of = seq_of

    def __missing__(self, uid: int) -> int:
        return uid if self._seq_of is None else (self._seq_of(uid) or 0)


def _esort(cmd: c.Sort, numbers: list[int], options: Sequence[str]) -> bytes:
    """RFC 5267 §3.1: ``ESEARCH (TAG "t") [UID] MIN first MAX last COUNT n ALL set``."""
    out = b"ESEARCH (TAG " + wire.string(cmd.tag) + b")"
    if cmd.uid:
        out += b" UID"
    if numbers and "MIN" in options:
        out += b" MIN %d" % numbers[0]
    if numbers and "MAX" in options:
        out += b" MAX %d" % numbers[-1]
    if "COUNT" in options:
        out += b" COUNT %d" % len(numbers)
    if numbers and "ALL" in options:
        out += b" ALL " + ordered_set(numbers)
    return out


def ordered_set(numbers: Sequence[int]) -> bytes:
    """A sequence-set that keeps the given order: only ascending runs of consecutive
    numbers become ranges (``3:5,1:2`` for 3 4 5 1 2)."""
    parts: list[bytes] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
        start = prev = n
    parts.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
    return b",".join(parts)
