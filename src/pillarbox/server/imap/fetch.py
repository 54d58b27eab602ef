"""FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3501 RFC822.*; RFC 3516 BINARY).

Hot path: the message set becomes UIDs from the session's view (no query); FLAGS-only
fetches are one `fetch_flags` call for the whole set; other items read precomputed rows
in chunks (one query per chunk, never per message) and copy the stored ENVELOPE / BODY /
BODYSTRUCTURE bytes. Only BODY[...], BINARY[...] and RFC822* touch the message file, and
then only the byte range of the section (offsets recorded at delivery).

Setting \\Seen (RFC 9051 §6.4.5 BODY[section]): a non-PEEK body fetch in a read-write
session sets \\Seen with one `set_flags` per chunk, and the FETCH response then carries
the new FLAGS.

Must not: parse MIME (the `message` package's pure helpers do section arithmetic), or
send EXPUNGE (the dispatcher holds them back for FETCH by sequence number).
"""

from __future__ import annotations

from pillarbox.message.headers import header_fields
from pillarbox.message.sections import (
    UnknownTransferEncoding,
    decode_transfer,
    part_encoding,
    section_range,
)
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.session import BadCommand, CommandNo, Session
from pillarbox.services.mailbox import (
    SelectedView,
    fetch_flags,
    fetch_info,
    read_message,
    set_flags,
)
from pillarbox.store.model import FlagMode, FlagRow, MessageInfo

CHUNK = 500
_UNSUPPORTED = frozenset({"EMAILID", "THREADID", "SAVEDATE"})


def resolve(s: Session, sequence_set: c.SequenceSet, *, uid: bool) -> list[int]:
    """The UIDs a message set names, from the view alone (RFC 9051 §6.4.9, RFC 5182 "$")."""
    view = s.require_view()
    if sequence_set.saved:
        return view.known(s.saved_search)
    ranges = [(r.start, r.end) for r in sequence_set.ranges]
    if uid:
        return view.uids_for_uid_set(ranges)
    return view.uids_for_sequence(ranges)


def _sets_seen(item: c.FetchItem) -> bool:
    if isinstance(item, c.FetchBody):
        return not item.peek
    if isinstance(item, c.FetchAttribute):
        return item.name in ("RFC822", "RFC822.TEXT")
    return False


def _needs_row(item: c.FetchItem) -> bool:
    return not (isinstance(item, c.FetchAttribute) and item.name in ("FLAGS", "UID", "MODSEQ"))


async def fetch(s: Session, cmd: c.Fetch) -> bytes:
    view = s.require_view()
    for item in cmd.items:
        if isinstance(item, c.FetchAttribute) and item.name in _UNSUPPORTED:
            raise BadCommand(f"{item.name} is not supported")
    if cmd.changed_since is not None:
        raise BadCommand("CHANGEDSINCE needs CONDSTORE, which is not enabled")
    uids = resolve(s, cmd.sequence_set, uid=cmd.uid)
    if not uids:
        return wire.tagged(cmd.tag, "OK", "FETCH completed")
    set_seen = not view.read_only and any(_sets_seen(i) for i in cmd.items)
    if not any(_needs_row(i) for i in cmd.items) and not set_seen:
        rows = await fetch_flags(s.store, view, uids)  # one query for the whole set
        for row in rows:
            seq = view.seq_of(row.uid)
            if seq is None:
                continue
            s.untagged(_format_flags_only(cmd, seq, row))
            await s.maybe_flush()
        return wire.tagged(cmd.tag, "OK", "FETCH completed")
    for start in range(0, len(uids), CHUNK):
        infos = await fetch_info(s.store, view, uids[start : start + CHUNK])
        seen_now: dict[int, FlagRow] = {}
        if set_seen:
            unseen = [i.uid for i in infos if "\\Seen" not in i.flags]
            if unseen:
                result = await set_flags(s.store, view, unseen, frozenset({"\\Seen"}), FlagMode.ADD)
                seen_now = {r.uid: r for r in result.changed}
                view.reported(result.changed)
        for info in infos:
            seq = view.seq_of(info.uid)
            if seq is None:
                continue
            changed = seen_now.get(info.uid)
            parts = await _items(s, view, cmd, info, changed)
            s.send(b"* %d FETCH (" % seq)
            for p in parts:
                s.send(p)
            s.send(b")\r\n")
            await s.maybe_flush()
    return wire.tagged(cmd.tag, "OK", "FETCH completed")


def _format_flags_only(cmd: c.Fetch, seq: int, row: FlagRow) -> bytes:
    out: list[bytes] = []
    if cmd.uid:
        out.append(b"UID %d" % row.uid)
    for item in cmd.items:
        assert isinstance(item, c.FetchAttribute)
        if item.name == "FLAGS":
            out.append(b"FLAGS " + wire.flag_list(row.flags))
        elif item.name == "UID" and not cmd.uid:
            out.append(b"UID %d" % row.uid)
        elif item.name == "MODSEQ":
            out.append(b"MODSEQ (%d)" % row.modseq)
    return b"%d FETCH (" % seq + b" ".join(out) + b")"


async def _items(
    s: Session, view: SelectedView, cmd: c.Fetch, info: MessageInfo, changed: FlagRow | None
) -> list[bytes]:
    out: list[bytes] = []
    flags = changed.flags if changed is not None else info.flags
    named: set[str] = set()
    if cmd.uid:
        out.append(b"UID %d" % info.uid)
        named.add("UID")
    for item in cmd.items:
        if isinstance(item, c.FetchAttribute):
            name = item.name
            if name in named:
                continue
            named.add(name)
            out.append(await _attribute(s, view, name, info, flags))
        elif isinstance(item, c.FetchBinarySize):
            data = await _binary(s, view, info, item.part)
            out.append(b"BINARY.SIZE[%s] %d" % (_part_text(item.part), len(data)))
        else:
            out.append(await _body(s, view, item, info))
    if changed is not None and "FLAGS" not in named:
        out.append(b"FLAGS " + wire.flag_list(flags))
    return [(b" " if i else b"") + p for i, p in enumerate(out)]


async def _attribute(
    s: Session, view: SelectedView, name: str, info: MessageInfo, flags: frozenset[str]
) -> bytes:
    if name == "FLAGS":
        return b"FLAGS " + wire.flag_list(flags)
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
        return b"MODSEQ (%d)" % info.modseq
    if name == "RFC822":
        return b"RFC822 " + wire.literal(await read_message(s.store, view, info.uid))
    if name == "RFC822.HEADER":
        data = await _section(s, view, info, (), "HEADER")
        return b"RFC822.HEADER " + wire.literal(data)
    if name == "RFC822.TEXT":
        data = await _section(s, view, info, (), "TEXT")
        return b"RFC822.TEXT " + wire.literal(data)
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


async def _section(
    s: Session, view: SelectedView, info: MessageInfo, part: tuple[int, ...], kind: str
) -> bytes:
    """The bytes of BODY[part.kind]; "" when the message has no such part."""
    if not part and kind == "":
        return await read_message(s.store, view, info.uid)
    span = section_range(info.parts, part, kind)
    if span is None:
        return b""
    start, end = span
    if end <= start:
        return b""
    return await read_message(s.store, view, info.uid, start, end - start)


async def _binary(
    s: Session, view: SelectedView, info: MessageInfo, part: tuple[int, ...]
) -> bytes:
    """RFC 3516: the part's content with its transfer encoding undone."""
    data = await _section(s, view, info, part, "")
    if not part:
        return data
    cte = part_encoding(info.parts, part)
    if cte is None:
        return b""
    try:
        return decode_transfer(data, cte)
    except UnknownTransferEncoding:
        raise CommandNo("Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None


def _partial(data: bytes, item: c.FetchBody) -> tuple[bytes, bytes]:
    if item.partial is None:
        return data, b""
    origin = item.partial.origin
    return data[origin : origin + item.partial.length], b"<%d>" % origin


async def _body(s: Session, view: SelectedView, item: c.FetchBody, info: MessageInfo) -> bytes:
    if item.binary:
        data = await _binary(s, view, info, item.part)
        data, origin = _partial(data, item)
        return (
            b"BINARY["
            + _part_text(item.part)
            + b"]"
            + origin
            + b" "
            + wire.literal(data, binary=True)
        )
    if item.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        block = await _section(s, view, info, item.part, "HEADER")
        data = header_fields(block, item.fields, item.kind == "HEADER.FIELDS.NOT")
        data, origin = _partial(data, item)
    elif item.partial is not None and not item.part and item.kind == "":
        # BODY[]<o.n>: only that byte range of the file is read.
        origin = b"<%d>" % item.partial.origin
        if item.partial.origin >= info.size:
            data = b""
        else:
            data = await read_message(
                s.store, view, info.uid, item.partial.origin, item.partial.length
            )
    else:
        data = await _section(s, view, info, item.part, item.kind)
        data, origin = _partial(data, item)
    return b"BODY[" + _section_name(item) + b"]" + origin + b" " + wire.literal(data)
