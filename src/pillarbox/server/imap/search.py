"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
the MODSEQ key and its ``(MODSEQ n)`` result (RFC 7162 §3.1.5, §3.1.6), and the context
options of CONTEXT=SEARCH (RFC 5267 §4: PARTIAL, UPDATE, CONTEXT) shared with SORT.

The parser's key tree (`model.search`, strings already decoded per CHARSET: US-ASCII and
UTF-8; anything else is ``NO [BADCHARSET]``) is resolved by the session's view — message
sequence sets become UID ranges, no query — and the store runs one query (TEXT/BODY
through its full-text index, never by reading message files).
Results are mapped back to sequence numbers through the view; messages the client has
not been told about yet are left out. With RETURN (UPDATE) the resolved key and the result
stay behind as a live result of the session (`keep_live`), which the session re-evaluates
and reports as ADDTO/REMOVEFROM (`Session.report_updates`).

Must not: read message files, or report EXPUNGE (held back by the dispatcher for SEARCH).
"""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model import SearchAnd, SearchKey, SearchModseq, SearchNot, SearchOr
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import esearch, wire
from pillarbox.server.imap.errors import BadCommand, CommandNo
from pillarbox.server.imap.session import Session
from pillarbox.services.live_results import LiveResult

CHARSETS = frozenset({"US-ASCII", "UTF-8"})


async def search(s: Session, cmd: c.Search) -> bytes:
    selected = s.require_selected()
    view = selected.view
    options = cmd.return_options
    save = options is not None and "SAVE" in options
    check_update_tag(s, cmd.tag, options)
    try:
        # RFC 6855 §3: with UTF8=ACCEPT on, a SEARCH names no CHARSET (BAD if it does).
        check_charset(s, cmd.charset, required=False)
        resolved = selected.resolve_search(cmd.criteria, s.saved_search)
        uids = await selected.matching(resolved)
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
            s.untagged(esearch.result(cmd.tag, cmd.uid, numbers, ("ALL",), modseq=modseq))
        else:
            tail = b" (MODSEQ %d)" % modseq if modseq is not None else b""
            s.untagged(b"SEARCH" + b"".join(b" %d" % n for n in numbers) + tail)
        return wire.tagged(cmd.tag, "OK", "SEARCH completed")
    answer(s, cmd.tag, cmd.uid, uids, numbers, options, cmd.partial, modseq)
    keep_live(s, cmd, resolved, uids)
    return wire.tagged(cmd.tag, "OK", "SEARCH completed")


def check_charset(s: Session, charset: str | None, *, required: bool) -> None:
    """The SEARCH CHARSET (optional) or SORT/THREAD charset (`required`, RFC 5256 §3):
    NO [BADCHARSET] for one we do not decode (RFC 9051 §6.4.4). Once UTF8=ACCEPT is
    enabled, strings are UTF-8 whatever is named: a SEARCH must name none, and SORT or
    THREAD must name UTF-8 (RFC 6855 §3 and its erratum 4029); BAD otherwise."""
    utf8 = "UTF8=ACCEPT" in s.enabled
    if utf8 and charset is not None and (not required or charset != "UTF-8"):
        raise BadCommand("No CHARSET other than UTF-8 once UTF8=ACCEPT is enabled")
    if (charset or "US-ASCII") not in CHARSETS:
        raise CommandNo("Charset not supported", "BADCHARSET (US-ASCII UTF-8)")


def check_update_tag(s: Session, tag: str, options: Sequence[str] | None) -> None:
    """RFC 5267 §4.3: UPDATE under a tag that already names a live context "SHALL" be
    refused with BAD (the tag is the only link between an update and its context)."""
    if options is not None and "UPDATE" in options and tag in s.live:
        raise BadCommand("Tag already in use by an updating search")


def answer(
    s: Session,
    tag: str,
    uid: bool,
    uids: Sequence[int],
    numbers: Sequence[int],
    options: Sequence[str],
    partial: c.PartialRange | None,
    modseq: int | None = None,
) -> None:
    """The ESEARCH answer to RETURN (...) and "$" for SAVE; `uids` and `numbers` (what the
    client is sent: UIDs or sequence numbers) in result order.

    ``RETURN ()`` (or only the CONTEXT hint) means ALL (RFC 4731 §3.1); SAVE alone
    suppresses the answer (RFC 5182 §1); UPDATE without data options answers with the
    correlator alone: it does not interact with the other options (RFC 5267 §4.3).
    """
    if "SAVE" in options:
        s.saved_search = esearch.saved(uids, options, partial)
    wanted: set[str] = set(esearch.DATA_OPTIONS.intersection(options))
    if not wanted and not set(options) - {"CONTEXT"}:
        wanted = {"ALL"}
    if wanted or "UPDATE" in options:
        s.untagged(esearch.result(tag, uid, numbers, tuple(wanted), partial, modseq))


def keep_live(
    s: Session,
    cmd: c.Search | c.Sort,
    resolved: SearchKey,
    uids: Sequence[int],
) -> None:
    """RETURN (UPDATE): keep the result live (RFC 5267 §4.3), with UPDATE's fetch
    attributes (RFC 5465 §7), or refuse with an untagged ``NO [NOUPDATE "tag"]`` when the
    session holds as many as it may (§4.3.1; the command itself still succeeds, its other
    options honoured)."""
    if cmd.return_options is None or "UPDATE" not in cmd.return_options:
        return
    view = s.require_selected().view
    criteria = cmd.criteria if isinstance(cmd, c.Sort) else None
    live = LiveResult(resolved, uids, view.max_uid, criteria=criteria, by_uid=cmd.uid)
    if not s.live.add(cmd.tag, live):
        s.untagged(b"NO [NOUPDATE " + wire.string(cmd.tag) + b"] Too many updating contexts")
    elif cmd.update_fetch:
        s.live_fetch[cmd.tag] = cmd.update_fetch


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
