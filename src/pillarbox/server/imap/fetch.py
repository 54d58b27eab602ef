"""FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3501 RFC822.*; RFC 3516 BINARY).

Hot path: the message set becomes UIDs from the session's view (no query); FLAGS-only
fetches are one `fetch_flag_bits` call for the whole set (raw rows; flag lists looked up
by bit pattern); other items read precomputed rows in chunks (one query per chunk,
never per message) and copy the stored ENVELOPE / BODY / BODYSTRUCTURE bytes. Only
BODY[...], BINARY[...] and RFC822* touch the message file, and then only the byte range
of the section (offsets recorded at delivery).

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
from pillarbox.model import SYSTEM_FLAGS, FlagMode, FlagRow, MessageInfo
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.session import BadCommand, CommandNo, Session
from pillarbox.services.mailbox import (
    NoSuchMailbox,
    SelectedView,
    fetch_flag_bits,
    fetch_info,
    fetch_info_with_files,
    read_messages,
    set_flags,
)

CHUNK = 500
# Message bytes read ahead in one store call: messages are grouped until their sizes
# reach this, so a FETCH BODY[] of many messages costs one thread hop per group, not two
# per message, and never holds more than about this much (or one message) in memory.
READ_AHEAD = 1024 * 1024
# FLAGS-only lines are joined into blocks of this many before they are queued.
FLAGS_BLOCK = 1024
_UNSUPPORTED = frozenset({"EMAILID", "THREADID", "SAVEDATE"})


def resolve(s: Session, sequence_set: c.SequenceSet, *, uid: bool) -> list[int]:
    """The UIDs a message set names, from the view alone (RFC 9051 §6.4.9, RFC 5182 "$")."""
    return s.require_view().resolve(sequence_set, uid=uid, saved=s.saved_search)


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
        rows, keywords = await fetch_flag_bits(s.store, view, uids)  # one query
        await _send_flags_only(s, view, cmd, rows, keywords)
        return wire.tagged(cmd.tag, "OK", "FETCH completed")
    reads_file = any(_reads_file(i) for i in cmd.items)
    # Only whole messages are read from files (BODY[], RFC822, BINARY[]): rows and files
    # come in one store call.
    whole = reads_file and all(_whole_file(i) for i in cmd.items if _reads_file(i))
    for start in range(0, len(uids), CHUNK):
        preread: dict[_Range, bytes | None] = {}
        if whole:
            pairs = await fetch_info_with_files(
                s.store, view, uids[start : start + CHUNK], READ_AHEAD
            )
            infos = [info for info, _ in pairs]
            preread = {(info.uid, 0, None): data for info, data in pairs if data is not None}
        else:
            infos = await fetch_info(s.store, view, uids[start : start + CHUNK])
        seen_now: dict[int, FlagRow] = {}
        if set_seen:
            unseen = [i.uid for i in infos if "\\Seen" not in i.flags]
            if unseen:
                result = await set_flags(s.store, view, unseen, frozenset({"\\Seen"}), FlagMode.ADD)
                seen_now = {r.uid: r for r in result.changed}
                view.reported(result.changed)
        infos = [i for i in infos if view.seq_of(i.uid) is not None]
        for group in _groups(infos) if reads_file else [infos]:
            bodies = _Bodies(s, view)
            for info in group if preread else ():
                data = preread.pop((info.uid, 0, None), None)
                if data is not None:
                    bodies.have(info.uid, data)
            if reads_file:
                await bodies.prefetch(cmd.items, group)
            for info in group:
                seq = view.seq_of(info.uid)
                assert seq is not None
                changed = seen_now.get(info.uid)
                parts = await _items(bodies, cmd, info, changed)
                s.send(b"* %d FETCH (" % seq + b"".join(parts) + b")\r\n")
                await s.maybe_flush()
    return wire.tagged(cmd.tag, "OK", "FETCH completed")


def _groups(infos: list[MessageInfo]) -> list[list[MessageInfo]]:
    """Consecutive messages whose sizes add up to at most `READ_AHEAD` (at least one)."""
    out: list[list[MessageInfo]] = []
    size = 0
    for info in infos:
        if not out or size + info.size > READ_AHEAD:
            out.append([])
            size = 0
        out[-1].append(info)
        size += info.size
    return out


_Range = tuple[int, int, int | None]  # (uid, start, length or None for the rest)


class _Bodies:
    """Message bytes for one group of FETCH responses: read ahead in one store call
    (`prefetch`), with a one-message read for anything the plan did not foresee."""

    def __init__(self, s: Session, view: SelectedView) -> None:
        self.s = s
        self.view = view
        self._data: dict[_Range, bytes | None] = {}

    def have(self, uid: int, data: bytes) -> None:
        """The whole file of `uid`, already read with its row (`fetch_with_files`)."""
        self._data[(uid, 0, None)] = data

    async def prefetch(self, items: tuple[c.FetchItem, ...], infos: list[MessageInfo]) -> None:
        wanted: list[_Range] = []
        for info in infos:
            for item in items:
                span = _planned_range(item, info)
                if span is not None:
                    wanted.append((info.uid, *span))
        wanted = [w for w in dict.fromkeys(wanted) if w not in self._data]
        if wanted:
            got = await read_messages(self.s.store, self.view, wanted)
            self._data.update(zip(wanted, got, strict=True))

    async def read(self, uid: int, start: int = 0, length: int | None = None) -> bytes:
        key = (uid, start, length)
        if key in self._data:
            data = self._data[key]
        else:
            (data,) = await read_messages(self.s.store, self.view, [key])
        if data is None:
            raise NoSuchMailbox("Message is gone")
        return data


def _whole_file(item: c.FetchItem) -> bool:
    """The item reads the whole message file (what `fetch_with_files` reads ahead)."""
    if isinstance(item, c.FetchAttribute):
        return item.name == "RFC822"
    if item.part:
        return False
    if isinstance(item, c.FetchBinarySize) or item.binary:
        return True
    return item.kind == "" and item.partial is None


def _reads_file(item: c.FetchItem) -> bool:
    if isinstance(item, c.FetchAttribute):
        return item.name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT")
    return True


def _section_span(
    info: MessageInfo, part: tuple[int, ...], kind: str
) -> tuple[int, int | None] | None:
    """(start, length) of BODY[part.kind] in the file; None when there is nothing to read."""
    if not part and kind == "":
        return (0, None)
    span = section_range(info.parts, part, kind)
    if span is None:
        return None
    start, end = span
    if end <= start:
        return None
    return (start, end - start)


def _planned_range(item: c.FetchItem, info: MessageInfo) -> tuple[int, int | None] | None:
    """The byte range `_items` will read for this item, to read it ahead."""
    if isinstance(item, c.FetchAttribute):
        if item.name == "RFC822":
            return (0, None)
        if item.name == "RFC822.HEADER":
            return _section_span(info, (), "HEADER")
        if item.name == "RFC822.TEXT":
            return _section_span(info, (), "TEXT")
        return None
    if isinstance(item, c.FetchBinarySize) or item.binary:
        return _section_span(info, item.part, "")
    if item.kind in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return _section_span(info, item.part, "HEADER")
    if item.partial is not None and not item.part and item.kind == "":
        if item.partial.origin >= info.size:
            return None
        return (item.partial.origin, item.partial.length)
    return _section_span(info, item.part, item.kind)


# FLAGS lists of every system-flag combination, indexed by the store's flag bits
# (bit ``1 << i`` is ``SYSTEM_FLAGS[i]``): a message without keywords costs one index.
_SYSTEM_FLAG_LISTS: tuple[bytes, ...] = tuple(
    wire.flag_list(frozenset(f for i, f in enumerate(SYSTEM_FLAGS) if bits & (1 << i)))
    for bits in range(1 << len(SYSTEM_FLAGS))
)
_SYSTEM_MASK = (1 << len(SYSTEM_FLAGS)) - 1


def _flag_list_of(bits: int, keywords: list[str] | None) -> bytes:
    if not keywords:
        return _SYSTEM_FLAG_LISTS[bits & _SYSTEM_MASK]
    system = (f for i, f in enumerate(SYSTEM_FLAGS) if bits & (1 << i))
    return wire.flag_list(frozenset((*system, *keywords)))


async def _send_flags_only(
    s: Session,
    view: SelectedView,
    cmd: c.Fetch,
    rows: list[tuple[int, int, int]],
    keywords: dict[int, list[str]],
) -> None:
    """FETCH of FLAGS / UID / MODSEQ only, from raw ``(uid, flag_bits, modseq)`` rows:
    lines formatted in one pass, flag lists looked up by bit pattern, queued in blocks
    (a `UID FETCH 1:* (FLAGS)` of 100,000 messages builds no set and makes no call per
    line but the sequence-number lookup)."""
    kinds: list[str] = ["UID"] if cmd.uid else []
    for item in cmd.items:
        assert isinstance(item, c.FetchAttribute)
        if item.name == "FLAGS" or item.name == "MODSEQ" or (item.name == "UID" and not cmd.uid):
            kinds.append(item.name)
    seq_of = view.seq_of
    lists = _SYSTEM_FLAG_LISTS
    mask = _SYSTEM_MASK
    uid_flags = kinds == ["UID", "FLAGS"]  # the common UID FETCH n:* (FLAGS)
    block: list[bytes] = []
    for uid, bits, modseq in rows:
        seq = seq_of(uid)
        if seq is None:
            continue
        kw = keywords.get(uid) if keywords else None
        flags = lists[bits & mask] if kw is None else _flag_list_of(bits, kw)
        if uid_flags:
            block.append(b"* %d FETCH (UID %d FLAGS %s)\r\n" % (seq, uid, flags))
        else:
            block.append(b"* " + _format_flags_only(kinds, seq, uid, flags, modseq) + b"\r\n")
        if len(block) >= FLAGS_BLOCK:
            s.send(b"".join(block))
            block.clear()
            await s.maybe_flush()
    if block:
        s.send(b"".join(block))


def _format_flags_only(kinds: list[str], seq: int, uid: int, flags: bytes, modseq: int) -> bytes:
    out: list[bytes] = []
    for kind in kinds:
        if kind == "FLAGS":
            out.append(b"FLAGS " + flags)
        elif kind == "UID":
            out.append(b"UID %d" % uid)
        else:
            out.append(b"MODSEQ (%d)" % modseq)
    return b"%d FETCH (" % seq + b" ".join(out) + b")"


async def _items(
    bodies: _Bodies, cmd: c.Fetch, info: MessageInfo, changed: FlagRow | None
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
            out.append(await _attribute(bodies, name, info, flags))
        elif isinstance(item, c.FetchBinarySize):
            data = await _binary(bodies, info, item.part)
            out.append(b"BINARY.SIZE[%s] %d" % (_part_text(item.part), len(data)))
        else:
            out.append(await _body(bodies, item, info))
    if changed is not None and "FLAGS" not in named:
        out.append(b"FLAGS " + wire.flag_list(flags))
    return [(b" " if i else b"") + p for i, p in enumerate(out)]


async def _attribute(bodies: _Bodies, name: str, info: MessageInfo, flags: frozenset[str]) -> bytes:
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
        return b"RFC822 " + wire.literal(await bodies.read(info.uid))
    if name == "RFC822.HEADER":
        data = await _section(bodies, info, (), "HEADER")
        return b"RFC822.HEADER " + wire.literal(data)
    if name == "RFC822.TEXT":
        data = await _section(bodies, info, (), "TEXT")
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


async def _section(bodies: _Bodies, info: MessageInfo, part: tuple[int, ...], kind: str) -> bytes:
    """The bytes of BODY[part.kind]; "" when the message has no such part."""
    span = _section_span(info, part, kind)
    if span is None:
        return b""
    return await bodies.read(info.uid, *span)


async def _binary(bodies: _Bodies, info: MessageInfo, part: tuple[int, ...]) -> bytes:
    """RFC 3516: the part's content with its transfer encoding undone."""
    data = await _section(bodies, info, part, "")
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


async def _body(bodies: _Bodies, item: c.FetchBody, info: MessageInfo) -> bytes:
    if item.binary:
        data = await _binary(bodies, info, item.part)
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
        block = await _section(bodies, info, item.part, "HEADER")
        data = header_fields(block, item.fields, item.kind == "HEADER.FIELDS.NOT")
        data, origin = _partial(data, item)
    elif item.partial is not None and not item.part and item.kind == "":
        # BODY[]<o.n>: only that byte range of the file is read.
        origin = b"<%d>" % item.partial.origin
        if item.partial.origin >= info.size:
            data = b""
        else:
            data = await bodies.read(info.uid, item.partial.origin, item.partial.length)
    else:
        data = await _section(bodies, info, item.part, item.kind)
        data, origin = _partial(data, item)
    return b"BODY[" + _section_name(item) + b"]" + origin + b" " + wire.literal(data)
