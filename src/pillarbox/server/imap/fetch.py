"""FETCH and UID FETCH responses (RFC 9051 §6.4.5, §7.5.2; RFC 3501 RFC822.*; RFC 3516
BINARY; RFC 7162 MODSEQ, CHANGEDSINCE, VANISHED).

This module frames answers; `SelectedMailbox.fetch` (`services.fetching`) decides what
to read and returns each section's exact bytes. The message set becomes UIDs from the
session's view (no query). FLAGS-only fetches read each chunk of messages as one text
the store built in SQL (`FlagText`) and frame it with bytes methods (sequence numbers
by position), the next chunk read while this one is written, so the client parses
while we read.
Other items come with the precomputed rows (the stored ENVELOPE / BODY / BODYSTRUCTURE
bytes are copied as they are), in batches that are written out before the next is read.

A FETCH of the whole text of a few messages (what a client sends to open one: ``UID
FETCH n BODY.PEEK[]``) goes the direct way (`DIRECT_MAX`): rows and bytes in one store
call, no section plan, no batches; a message to stream (1 MiB or more), more than the
read-ahead in all, or a file gone meanwhile sends it back to the general path before
anything is changed or sent. BINARY[] and partial ranges always take the general path.

Setting \\Seen (RFC 9051 §6.4.5 BODY[section]): a non-PEEK body fetch in a read-write
session sets \\Seen (done by the service), and the FETCH response then carries the new
FLAGS.

A section the service hands back as a `LargeSection` (a large byte range of the stored
message) is streamed: the response up to its literal header is written, then its bytes
as the client takes them (`Session.send_stream`), then the rest of the response, so one
connection holds at most a chunk or two of it whatever the message size (issue 16). Its
blob is opened before any of the response is sent and closed however the stream ends.

Must not: locate or decode message sections (the service does), read a section into
memory whole when the service said to stream it, or send EXPUNGE (the session holds
them back for FETCH by sequence number).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import re
from bisect import bisect_left
from collections.abc import AsyncIterator
from itertools import chain

from pillarbox.model import FlagText, objectids
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import resync, wire
from pillarbox.server.imap.errors import BadCommand
from pillarbox.server.imap.session import RECENT_FLAG, Session
from pillarbox.services.fetch_stream import LargeSection, SectionStream
from pillarbox.services.fetching import WHOLE_MESSAGE, FetchedMessage, Section
from pillarbox.services.selected import SelectedMailbox
from pillarbox.services.view import SelectedView

# FLAGS-only fetches read their rows in chunks: a small first one so the answer starts at
# once, then larger ones (each chunk is one store call; its lines go out before the next).
FLAGS_FIRST_CHUNK = 1_000
FLAGS_CHUNK = 8_000
# A FETCH of whole messages (BODY[], BODY.PEEK[], RFC822, with any items read from the
# row) of at most this many messages takes the direct path: `SelectedMailbox.fetch_whole`
# reads rows and bytes in one store call, and each response is framed from them at once.
DIRECT_MAX = 8
_RFC822_SECTIONS = {
    "RFC822": WHOLE_MESSAGE,
    "RFC822.HEADER": Section(kind="HEADER"),
    "RFC822.TEXT": Section(kind="TEXT"),
}


def _sets_seen(item: c.FetchItem) -> bool:
    if isinstance(item, c.FetchBody):
        return not item.peek
    if isinstance(item, c.FetchAttribute):
        return item.name in ("RFC822", "RFC822.TEXT")
    return False


def _is_modseq(item: c.FetchItem) -> bool:
    return isinstance(item, c.FetchAttribute) and item.name == "MODSEQ"


def _needs_row(item: c.FetchItem) -> bool:
    return not (isinstance(item, c.FetchAttribute) and item.name in ("FLAGS", "UID", "MODSEQ"))


def section_of(item: c.FetchItem) -> Section | None:
    """The part of the message an item reads, as the service names it (None: no read)."""
    if isinstance(item, c.FetchAttribute):
        return _RFC822_SECTIONS.get(item.name)
    if isinstance(item, c.FetchBinarySize):
        return Section(item.part, decode=True)
    partial = None if item.partial is None else (item.partial.origin, item.partial.length)
    if item.binary:
        return Section(item.part, partial=partial, decode=True)
    return Section(item.part, item.kind, item.fields, partial)


async def fetch(s: Session, cmd: c.Fetch) -> bytes:
    selected = s.require_selected()
    if cmd.vanished and not s.qresync:
        raise BadCommand("VANISHED needs QRESYNC, which is not enabled")  # RFC 7162 §3.2.6
    if cmd.changed_since is not None or any(_is_modseq(i) for i in cmd.items):
        s.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    if cmd.changed_since is not None and not any(_is_modseq(i) for i in cmd.items):
        # RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ item.
        cmd = dataclasses.replace(cmd, items=(*cmd.items, c.FetchAttribute("MODSEQ")))
    if cmd.vanished:
        assert cmd.changed_since is not None  # the parser allows VANISHED only with it
        within = resync.UidSet(cmd.sequence_set, s.saved_search)
        await resync.vanished_earlier(s, selected, cmd.changed_since, within)
    uids = s.resolve(cmd.sequence_set, uid=cmd.uid)
    if not uids:
        return wire.tagged(cmd.tag, "OK", "FETCH completed")
    set_seen = not selected.read_only and any(_sets_seen(i) for i in cmd.items)
    view = selected.view
    if not any(_needs_row(i) for i in cmd.items) and not set_seen:
        await _send_flags_only(s, selected, cmd, uids)
        return wire.tagged(cmd.tag, "OK", "FETCH completed")
    if cmd.changed_since is not None:
        # One query for the MODSEQs, so only changed messages are read.
        since = cmd.changed_since
        uids = [u for u, _bits, modseq in (await selected.flag_bits(uids))[0] if modseq > since]
        if not uids:
            return wire.tagged(cmd.tag, "OK", "FETCH completed")
    # Each item's section once per command, not once per message.
    item_sections = [section_of(item) for item in cmd.items]
    sections = [sec for sec in item_sections if sec is not None]
    recent = view.recent  # IMAP4rev1 \Recent (RFC 3501 §2.3.2); empty for rev2
    if (
        len(uids) <= DIRECT_MAX
        and cmd.changed_since is None
        and sections
        and all(sec == WHOLE_MESSAGE for sec in sections)
    ):
        found = await selected.fetch_whole(uids, set_seen=set_seen)
        if found is not None:
            for message in found:
                seq = view.seq_of(message.info.uid)
                assert seq is not None  # the service returns only messages the view knows
                if recent and message.info.uid in recent:
                    message.flags = message.flags | RECENT_FLAG
                items = _items(cmd, item_sections, message, condstore=s.condstore)
                s.announce_flags(message.flags)  # RFC 9051 §7.3.5: new keywords first
                s.send(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
                await s.maybe_flush()
            return wire.tagged(cmd.tag, "OK", "FETCH completed")
    async for batch in selected.fetch(uids, sections, set_seen=set_seen, stream=True):
        for message in batch:
            seq = view.seq_of(message.info.uid)
            assert seq is not None  # the service returns only messages the view knows
            if recent and message.info.uid in recent:
                message = dataclasses.replace(message, flags=message.flags | RECENT_FLAG)
            if message.streams:
                await _send_streamed(s, cmd, item_sections, message, seq)
                continue
            items = _items(cmd, item_sections, message, condstore=s.condstore)
            s.announce_flags(message.flags)  # RFC 9051 §7.3.5: new keywords first
            s.send(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
            await s.maybe_flush()
    return wire.tagged(cmd.tag, "OK", "FETCH completed")


async def _send_streamed(
    s: Session,
    cmd: c.Fetch,
    item_sections: list[Section | None],
    message: FetchedMessage,
    seq: int,
) -> None:
    """One FETCH response with streamed sections: each item's text up to a streamed
    literal's header is queued, then the literal's bytes go out chunk by chunk, each
    written before the next is read (the socket's back-pressure paces the blob reads)."""
    # RFC 3516 §4.3: BINARY[] data without NUL SHOULD go as a <string>, not a literal8;
    # whether a streamed one holds NUL is only known by reading it first.
    literal8: set[Section] = set()
    for item, section in zip(cmd.items, item_sections, strict=True):
        data = message.streams.get(section) if section is not None else None
        if isinstance(item, c.FetchBody) and item.binary and isinstance(data, LargeSection):
            assert section is not None
            if section not in literal8 and await data.has_nul():
                literal8.add(section)
    tails: dict[int, tuple[LargeSection, bool]] = {}
    items = _items(cmd, item_sections, message, condstore=s.condstore, tails=tails, binary=literal8)
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[int, tuple[SectionStream, bool]] = {}
        for index, (large, exact) in tails.items():
            stream = await large.open()  # NoSuchMailbox before anything is sent
            stack.push_async_callback(stream.close)
            opened[index] = (stream, exact)
        s.announce_flags(message.flags)  # RFC 9051 §7.3.5: new keywords first
        s.send(b"* %d FETCH (" % seq)
        for index, item_text in enumerate(items):
            s.send(b" " + item_text if index else item_text)
            if index in opened:
                stream, exact = opened[index]
                await s.send_stream(stream.chunks() if exact else _no_nul(stream.chunks()))
        s.send(b")\r\n")
    await s.maybe_flush()


async def _no_nul(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """NUL sent as 0x80 outside BINARY[], chunk by chunk (as `wire.literal` does)."""
    async for chunk in chunks:
        yield chunk.replace(b"\x00", b"\x80") if b"\x00" in chunk else chunk


async def _send_flags_only(
    s: Session, selected: SelectedMailbox, cmd: c.Fetch, uids: list[int]
) -> None:
    """FETCH of FLAGS / UID / MODSEQ only, in chunks (`FLAGS_FIRST_CHUNK`, then
    `FLAGS_CHUNK`), each read as one `FlagText` the store built in SQL (the flag names
    of every message, one string per chunk: no Python object per message there), the
    next chunk's read started before this one is framed and written, so the store
    reads while we format and the client parses. A chunk that is a run of the view with
    every row present (the usual case) is asked for as a UID range (no list walked) and
    framed with no Python per message beyond one format argument (`_framed_lines`);
    otherwise (another item order, MODSEQ, \\Recent, an expunge the session has not
    told, a UID list with holes) line by line (`_flag_lines`). Every chunk is read
    from the store when it is answered: nothing is cached, so no line can be older than
    the command (issue 18)."""
    view = selected.view
    kinds: list[str] = ["UID"] if cmd.uid else []
    for item in cmd.items:
        assert isinstance(item, c.FetchAttribute)
        if item.name == "FLAGS" or item.name == "MODSEQ" or (item.name == "UID" and not cmd.uid):
            kinds.append(item.name)
    since = cmd.changed_since
    with_modseq = "MODSEQ" in kinds or since is not None
    # `uids` is an ascending subset of the view's UIDs: it is one run of them exactly
    # when its last UID sits len(uids) - 1 places after its first.
    first = bisect_left(view.uids, uids[0])
    last = first + len(uids) - 1
    run = last < len(view.uids) and view.uids[last] == uids[-1]
    recent = view.recent  # IMAP4rev1 \Recent (RFC 3501 §2.3.2); empty for rev2
    recent_span = (min(recent), max(recent)) if recent else None
    bounds: list[tuple[int, int]] = []  # [start, end) of each chunk in `uids`
    offset, size = 0, FLAGS_FIRST_CHUNK
    while offset < len(uids):
        bounds.append((offset, min(offset + size, len(uids))))
        offset, size = offset + size, FLAGS_CHUNK

    def read(index: int) -> asyncio.Future[FlagText]:
        start, end = bounds[index]
        # A run of the view is every UID between its ends the session knows: asked
        # for as that range (rows the session does not know cannot be in it, UIDs
        # grow; fewer rows — an expunge not yet told — fall to the line-by-line path).
        wanted = range(uids[start], uids[end - 1] + 1) if run else uids[start:end]
        return asyncio.ensure_future(
            selected.flag_text(wanted, modseq=with_modseq, changed_since=since)
        )

    pending: asyncio.Future[FlagText] | None = read(0)
    try:
        for index, (start, end) in enumerate(bounds):
            assert pending is not None
            found = await pending
            pending = read(index + 1) if index + 1 < len(bounds) else None
            if not found.count:
                continue
            if found.keywords and "FLAGS" in kinds:
                s.announce_flags(found.keywords)  # RFC 9051 §7.3.5: new keywords first
            base = first + start if run and found.count == end - start else None
            lo, hi = uids[start], uids[end - 1]
            plain = recent_span is None or hi < recent_span[0] or lo > recent_span[1]
            if base is not None and plain and since is None and kinds in _FRAMED:
                s.send(_framed_lines(found.text, base + 1, with_uid=kinds[0] == "UID"))
            else:
                told: list[tuple[int, int]] | None = [] if since is not None else None
                s.send(_flag_lines(view, kinds, found, base, with_modseq, told))
                if told:
                    # The client now has these MODSEQs: no unsolicited FETCH repeats them.
                    view.reported_modseqs(told)
            await s.flush()
    finally:
        if pending is not None:  # the answer stopped early (the client went, an error)
            pending.cancel()
            if pending.done() and not pending.cancelled():
                pending.exception()  # read, so asyncio does not log it as lost


# The item lists `_framed_lines` frames (UID FETCH n:* (FLAGS), FETCH n:* (FLAGS)).
_FRAMED = (["UID", "FLAGS"], ["FLAGS"])
_LEADING_UID = re.compile(rb"^\d+\t", re.MULTILINE)


def _framed_lines(text: str, seq: int, *, with_uid: bool) -> bytes:
    """``* n FETCH (UID u FLAGS (...))`` (or without the UID) for each ``uid TAB names``
    line of a `FlagText`, numbered from `seq`: the text is cut and re-joined by bytes
    methods (and a regular expression to drop the UIDs) and one ``%`` over a format
    repeated once per line, so per message Python only hands over two arguments."""
    data = text.encode("utf-8", "replace")
    if with_uid:
        lines = data.replace(b"\t", b" FLAGS (").split(b"\n")
        line = b"* %d FETCH (UID %s))\r\n"
    else:
        lines = _LEADING_UID.sub(b"", data).split(b"\n")
        line = b"* %d FETCH (FLAGS (%s))\r\n"
    numbers = range(seq, seq + len(lines))
    return (line * len(lines)) % tuple(chain.from_iterable(zip(numbers, lines, strict=True)))


def _lines(found: FlagText) -> list[str]:
    return found.text.split("\n") if found.count else []


def _flag_lines(
    view: SelectedView,
    kinds: list[str],
    found: FlagText,
    base: int | None,
    with_modseq: bool,
    told: list[tuple[int, int]] | None = None,
) -> bytes:
    """The FETCH lines of a `FlagText` one by one, in the order of `kinds`; `base`: the
    view index of the first line when the lines are that many consecutive messages of
    the view (sequence numbers by position), else numbered by one merge walk over the
    view, which also drops a line of a UID the view does not hold. `told` (with
    `with_modseq`) collects the (UID, MODSEQ) of every line written."""
    recent = view.recent
    view_uids = view.uids
    i = bisect_left(view_uids, int(found.text.split("\t", 1)[0])) if base is None else base
    n = len(view_uids)
    block: list[bytes] = []
    for line in _lines(found):
        if with_modseq:
            uid_text, modseq_text, names = line.split("\t", 2)
        else:
            uid_text, names = line.split("\t", 1)
            modseq_text = ""
        uid = int(uid_text)
        if base is None:
            while i < n and view_uids[i] < uid:
                i += 1
            if i == n or view_uids[i] != uid:
                continue
        seq = i + 1
        i += 1
        if told is not None:
            told.append((uid, int(modseq_text)))
        if recent and uid in recent:
            flags = wire.flag_list([*names.split(), "\\Recent"])  # RFC 3501 §2.3.2
        else:
            flags = b"(" + names.encode("utf-8", "replace") + b")"
        out: list[bytes] = []
        for kind in kinds:
            if kind == "FLAGS":
                out.append(b"FLAGS " + flags)
            elif kind == "UID":
                out.append(b"UID " + uid_text.encode())
            else:
                out.append(b"MODSEQ (" + modseq_text.encode() + b")")
        block.append(b"* %d FETCH (" % seq + b" ".join(out) + b")\r\n")
    return b"".join(block)


def _items(
    cmd: c.Fetch,
    item_sections: list[Section | None],
    message: FetchedMessage,
    *,
    condstore: bool = False,
    tails: dict[int, tuple[LargeSection, bool]] | None = None,
    binary: frozenset[Section] | set[Section] = frozenset(),
) -> list[bytes]:
    """The data items of one FETCH response, in the order asked (UID first for UID
    FETCH, RFC 9051 §6.4.9; FLAGS added when this FETCH set \\Seen). `item_sections`
    is `section_of` of each item of `cmd`. An item whose section is a `LargeSection`
    ends with its literal's header (literal8 for BINARY[] sections in `binary`), and
    `tails` gets, at its index, the section to stream after it and whether its octets
    go exactly (BINARY[]) or with NUL as 0x80."""
    info = message.info
    out: list[bytes] = []
    named: set[str] = set()
    if cmd.uid:
        out.append(b"UID %d" % info.uid)
        named.add("UID")
    for item, section in zip(cmd.items, item_sections, strict=True):
        if isinstance(item, c.FetchAttribute):
            name = item.name
            if name in named:
                continue
            named.add(name)
            data = _section(message, section) if section is not None else b""
            if isinstance(data, LargeSection):
                assert tails is not None  # `_send_streamed` passes it
                tails[len(out)] = (data, False)
            out.append(_attribute(name, message, data))
        elif isinstance(item, c.FetchBinarySize):
            assert section is not None
            size = len(_section(message, section))
            out.append(b"BINARY.SIZE[%s] %d" % (_part_text(item.part), size))
        else:
            assert section is not None
            data = _section(message, section)
            if isinstance(data, LargeSection):
                assert tails is not None  # `_send_streamed` passes it
                tails[len(out)] = (data, item.binary)
            out.append(_body(item, data, literal8=section in binary))
    if message.flags_changed and "FLAGS" not in named:
        out.append(b"FLAGS " + wire.flag_list(message.flags))
    if message.flags_changed and condstore and "MODSEQ" not in named:
        out.append(b"MODSEQ (%d)" % message.modseq)  # RFC 7162 §3.1: flags changed
    return out


def _section(message: FetchedMessage, section: Section) -> bytes | LargeSection:
    """A section's bytes, or the `LargeSection` to stream them from."""
    streamed = message.streams.get(section)
    return streamed if streamed is not None else message.sections[section]


def _literal(data: bytes | LargeSection, *, binary: bool = False, literal8: bool = False) -> bytes:
    """A literal, or only the header of a streamed one (its bytes follow separately)."""
    if isinstance(data, LargeSection):
        return (b"~{%d}\r\n" if literal8 else b"{%d}\r\n") % data.length
    return wire.literal(data, binary=binary)


def _attribute(name: str, message: FetchedMessage, data: bytes | LargeSection) -> bytes:
    """One attribute item; `data` is the section an RFC822* item reads."""
    info = message.info
    if name == "FLAGS":
        return b"FLAGS " + wire.flag_list(message.flags)
    if name == "UID":
        return b"UID %d" % info.uid
    if name == "INTERNALDATE":
        return b"INTERNALDATE " + wire.date_time(info.internaldate)
    if name == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % info.size
    if name == "ENVELOPE":
        return b"ENVELOPE " + info.envelope
    if name == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + info.bodystructure
    if name == "BODY":
        return b"BODY " + info.body
    if name == "MODSEQ":
        return b"MODSEQ (%d)" % message.modseq
    if name == "PREVIEW":  # RFC 8970 §3: computed at delivery, never NIL
        return b"PREVIEW " + wire.string(info.preview.encode("utf-8"))
    if name == "EMAILID":  # RFC 8474 §5.1: the blob, shared by COPY and MOVE
        return b"EMAILID (" + objectids.email_id(info.blob_id).encode() + b")"
    if name == "THREADID":  # RFC 8474 §5.2: kept per message (`model.objectids`)
        if info.thread_id is None:
            return b"THREADID NIL"
        return b"THREADID (" + objectids.thread_object_id(info.thread_id).encode() + b")"
    if name == "SAVEDATE":  # RFC 8514 §4.2
        return b"SAVEDATE " + wire.date_time(info.savedate) if info.savedate else b"SAVEDATE NIL"
    if name in _RFC822_SECTIONS:
        return name.encode() + b" " + _literal(data)
    raise BadCommand(f"{name} is not supported")


def _part_text(part: tuple[int, ...]) -> bytes:
    return ".".join(str(p) for p in part).encode()


def _section_name(item: c.FetchBody) -> bytes:
    spec = _part_text(item.part)
    kind = item.kind.encode()
    if kind:
        spec = spec + b"." + kind if spec else kind
    if item.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        spec += (
            b" ("
            + b" ".join(
                wire.string(f) if not f.isalnum() and "-" not in f else f.encode()
                for f in item.fields
            )
            + b")"
        )
    return spec


@functools.lru_cache(maxsize=256)
def _body_prefix(item: c.FetchBody) -> bytes:
    """``BODY[section]<origin> `` or ``BINARY[part]<origin> ``: the same for every message
    of a FETCH, so made once per distinct item, not once per message."""
    origin = b"" if item.partial is None else b"<%d>" % item.partial.origin
    if item.binary:
        return b"BINARY[" + _part_text(item.part) + b"]" + origin + b" "
    return b"BODY[" + _section_name(item) + b"]" + origin + b" "


def _body(item: c.FetchBody, data: bytes | LargeSection, *, literal8: bool = False) -> bytes:
    if item.binary:
        return _body_prefix(item) + _literal(data, binary=True, literal8=literal8)
    return _body_prefix(item) + _literal(data)
