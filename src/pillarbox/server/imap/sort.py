"""SORT and UID SORT (RFC 5256 §4), ESORT (RFC 5267 §3), DISPLAYFROM/DISPLAYTO (RFC 5957),
THREAD and UID THREAD (RFC 5256 §4) with ORDEREDSUBJECT and REFERENCES.

The search and the ordering are the selected mailbox's (`SelectedMailbox.sort` and
`.thread`: one search, one store read of precomputed columns); this module checks the
charset and the algorithm and writes ``* SORT`` or, with a RETURN clause, ``* ESEARCH``
whose MIN/MAX are the first/last message in sort order and whose ALL keeps the sort order
(RFC 5267 §3.1), with SEARCH's handling of SAVE (RFC 5182 §1: "any command based on
SEARCH"), PARTIAL in sort order and UPDATE (CONTEXT=SORT, RFC 5267 §4); for THREAD,
``* THREAD`` with one parenthesised thread-list per thread
(`threads.thread_list`).

Must not: read message files, or report EXPUNGE (held back by the dispatcher for SORT and
THREAD by sequence number, as for SEARCH).
"""

from __future__ import annotations

from collections.abc import Callable

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import BadCommand
from pillarbox.server.imap.search import answer, check_charset, check_update_tag, keep_live
from pillarbox.server.imap.session import Session
from pillarbox.services import sorting
from pillarbox.services.threads import thread_list


async def sort(s: Session, cmd: c.Sort) -> bytes:
    selected = s.require_selected()
    options = cmd.return_options
    check_update_tag(s, cmd.tag, options)
    try:
        check_charset(s, cmd.charset, required=True)
        resolved = selected.resolve_search(cmd.search, s.saved_search)
        uids = await selected.in_order(await selected.matching(resolved), cmd.criteria)
    except BaseException:
        if options is not None and "SAVE" in options:
            s.saved_search = []  # RFC 5182 §2.1: a failed SAVE search empties "$"
        raise
    view = selected.view
    numbers = uids if cmd.uid else [view.seq_of(u) or 0 for u in uids]
    if options is None:
        s.untagged(b"SORT" + b"".join(b" %d" % n for n in numbers))
    else:
        answer(s, cmd.tag, cmd.uid, uids, numbers, options, cmd.partial)
        keep_live(s, cmd, resolved, uids)
    return wire.tagged(cmd.tag, "OK", "SORT completed")


async def thread(s: Session, cmd: c.Thread) -> bytes:
    selected = s.require_selected()
    if cmd.algorithm not in sorting.THREAD_ALGORITHMS:
        raise BadCommand("Unknown threading algorithm")  # RFC 5256 §4: BAD
    check_charset(s, cmd.charset, required=True)
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
