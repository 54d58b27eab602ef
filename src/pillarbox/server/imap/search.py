"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
the MODSEQ key and its ``(MODSEQ n)`` result (RFC 7162 §3.1.5, §3.1.6).

The parser's key tree (`model.search`, strings already decoded per CHARSET: US-ASCII and
UTF-8; anything else is ``NO [BADCHARSET]``) is resolved by the session's view — message
sequence sets become UID ranges, no query — and the store runs one query (TEXT/BODY
through its full-text index, never by reading message files).
Results are mapped back to sequence numbers through the view; messages the client has
not been told about yet are left out.

Must not: read message files, or report EXPUNGE (held back by the dispatcher for SEARCH).
"""

from __future__ import annotations

from pillarbox.model import SearchAnd, SearchKey, SearchModseq, SearchNot, SearchOr
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.session import Session

CHARSETS = frozenset({"US-ASCII", "UTF-8"})


async def search(s: Session, cmd: c.Search) -> bytes:
    selected = s.require_selected()
    view = selected.view
    charset = cmd.charset or "US-ASCII"
    if charset not in CHARSETS:
        raise CommandNo("Charset not supported", "BADCHARSET (US-ASCII UTF-8)")
    options = cmd.return_options
    save = options is not None and "SAVE" in options
    try:
        uids = await selected.search(cmd.criteria, s.saved_search)
    except BaseException:
        if save:
            s.saved_search = []  # RFC 5182 §2.1: a failed SAVE search empties "$"
        raise
    numbers = uids if cmd.uid else [view.seq_of(u) or 0 for u in uids]
    modseq = None
    if _uses_modseq(cmd.criteria):
        s.enable_condstore()  # RFC 7162 §3.1: SEARCH MODSEQ enables CONDSTORE
        if uids:
            # RFC 7162 §3.1.6: the highest MODSEQ of the messages found (one query).
            rows, _keywords = await selected.flag_bits(uids)
            modseq = max((r[2] for r in rows), default=None)
    if options is None:
        if s.rev2:
            _esearch(s, cmd, numbers, ("ALL",), modseq)
        else:
            tail = b" (MODSEQ %d)" % modseq if modseq is not None else b""
            s.untagged(b"SEARCH" + b"".join(b" %d" % n for n in numbers) + tail)
        return wire.tagged(cmd.tag, "OK", "SEARCH completed")
    wanted = tuple(o for o in options if o != "SAVE") or (() if save else ("ALL",))
    for opt in wanted:
        if opt not in ("MIN", "MAX", "ALL", "COUNT"):
            raise BadCommand("Unknown search return option")
    if save:
        # RFC 5182 §2.4: with only MIN and/or MAX, "$" holds just those messages.
        if wanted and not {"ALL", "COUNT"} & set(wanted):
            keep = set()
            if uids and "MIN" in wanted:
                keep.add(uids[0])
            if uids and "MAX" in wanted:
                keep.add(uids[-1])
            s.saved_search = sorted(keep)
        else:
            s.saved_search = list(uids)
    if wanted:
        _esearch(s, cmd, numbers, wanted, modseq)
    return wire.tagged(cmd.tag, "OK", "SEARCH completed")


def _uses_modseq(key: SearchKey) -> bool:
    """The criteria hold a MODSEQ key (RFC 7162 §3.1.5), at any depth."""
    match key:
        case SearchModseq():
            return True
        case SearchAnd(keys=keys):
            return any(_uses_modseq(k) for k in keys)
        case SearchOr(left=left, right=right):
            return _uses_modseq(left) or _uses_modseq(right)
        case SearchNot(key=inner):
            return _uses_modseq(inner)
    return False


def _esearch(
    s: Session,
    cmd: c.Search,
    numbers: list[int],
    options: tuple[str, ...],
    modseq: int | None = None,
) -> None:
    """RFC 4731 §3.1 / RFC 9051 §7.3.4: ``* ESEARCH (TAG "t") [UID] MIN n ...``, with
    ``MODSEQ n`` after a MODSEQ search that found something (RFC 7162 §3.1.5)."""
    out = b"ESEARCH (TAG " + wire.string(cmd.tag) + b")"
    if cmd.uid:
        out += b" UID"
    if numbers and "MIN" in options:
        out += b" MIN %d" % min(numbers)
    if numbers and "MAX" in options:
        out += b" MAX %d" % max(numbers)
    if "COUNT" in options:
        out += b" COUNT %d" % len(numbers)
    if numbers and "ALL" in options:
        out += b" ALL " + wire.sequence_set(numbers)
    if modseq is not None:
        out += b" MODSEQ %d" % modseq
    s.untagged(out)
