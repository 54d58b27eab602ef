"""Reading messages for FETCH: which rows, which byte ranges, and the bytes of each section.

Owns the plan of a FETCH (RFC 9051 §6.4.5) below its syntax: the message rows come in
chunks of `CHUNK` (one store call each, never a query per message); a non-PEEK body
fetch in a read-write session sets ``\\Seen`` with one `set_flags` per chunk; the bytes
of every requested `Section` are located from the part offsets recorded at delivery
(`message.sections`, no re-parse) and read ahead in one store call per group of messages
whose sizes add up to `READ_AHEAD`; a FETCH of whole messages only reads rows and bodies
in one call (`Store.fetch_with_bodies`), and so does a FETCH of top-level header sections
only, for messages up to `SMALL_WHOLE`. What comes back is the exact bytes of each
section — partial ranges applied, HEADER.FIELDS filtered, BINARY decoded (RFC 3516) —
so the front-end only frames them.

A section of `STREAM_MIN` bytes or more that is a byte range of the stored message (the
whole message, TEXT, a part, a partial range, BINARY of a part without transfer
encoding) or BINARY of a base64 / quoted-printable part is not read here when the caller
asks for streams (IMAP does; the webmail, which parses the bytes, does not): it comes
back as a `LargeSection` (`services.fetch_stream`), its length known from the recorded
offsets (a decoded one is measured by one pass first), and the front-end streams it from
the blob piece by piece as its client takes them (issue 16: memory bounded by what
clients read, not by what they ask for). Smaller sections keep the read-ahead path,
whose speed the benchmarks measure. HEADER, HEADER.FIELDS and MIME are always read into
memory: SMTP bounds a header by `[smtp] max_header_size`, IMAP APPEND (and the
webmail's drafts) every header block by `message.parts.MAX_HEADER_SIZE`.

Must not: know IMAP syntax (sections are plain values here), read a message the session
does not know, or, when streaming, hold more than about 4 × `READ_AHEAD` of message
bytes at a time (without streams: about `READ_AHEAD`, or one message's sections).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from pillarbox.message.headers import header_fields
from pillarbox.message.sections import (
    UnknownTransferEncoding,
    decode_transfer,
    part_encoding,
    section_range,
)
from pillarbox.message.transfer import IDENTITY
from pillarbox.model import FlagMode, FlagRow, MessageInfo
from pillarbox.services.errors import Rejected
from pillarbox.services.fetch_stream import STREAMED_ENCODINGS, LargeSection, measure
from pillarbox.services.mailbox import NoSuchMailbox, call_store
from pillarbox.services.view import SelectedView
from pillarbox.store.api import Store

CHUNK = 500
# Message bytes read ahead in one store call: messages are grouped until their sizes
# reach this, so a FETCH BODY[] of many messages costs one thread hop per group, not two
# per message, and never holds more than about this much (or one message) in memory.
READ_AHEAD = 1024 * 1024
# A section this large that is a plain byte range of the message is streamed, not read
# (`LargeSection`); below it, sections are read ahead as they always were.
STREAM_MIN = 1024 * 1024

HEADER_FIELD_KINDS = frozenset({"HEADER.FIELDS", "HEADER.FIELDS.NOT"})
HEADER_KINDS = HEADER_FIELD_KINDS | {"HEADER"}
# A FETCH of only the top-level header sections (what a mail client asks to list a
# mailbox: BODY.PEEK[HEADER.FIELDS (...)]) reads messages up to this size whole, in the
# same store call as their rows: one thread hop instead of two per chunk (issue 18: each
# hop costs the event loop a wake-up and the reader a GIL hand-over), for a few KiB more
# read from the page cache. Larger messages' headers are read as byte ranges.
SMALL_WHOLE = 64 * 1024


class UnknownEncoding(Rejected):
    """BINARY of a part whose Content-Transfer-Encoding we cannot undo (RFC 3516 §4.3)."""


@dataclass(frozen=True, slots=True)
class Section:
    """Part of a message to read (RFC 9051 §6.4.5 section-spec, RFC 3516 BINARY).

    `part` is the part path (``()`` is the whole message); `kind` is "" (the part),
    "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME"; `fields` the
    header names for HEADER.FIELDS[.NOT]; `partial` is ``(origin, length)``; `decode`
    undoes the part's transfer encoding (BINARY).
    """

    part: tuple[int, ...] = ()
    kind: str = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None
    decode: bool = False

    @property
    def whole_message(self) -> bool:
        """The section is the whole stored message (what `fetch_with_bodies` reads)."""
        return not self.part and self.kind == "" and self.partial is None


WHOLE_MESSAGE = Section()


@dataclass(slots=True)
class FetchedMessage:
    """One message of a FETCH answer: its row, its flags now, and each section's bytes."""

    info: MessageInfo
    flags: frozenset[str]
    flags_changed: bool = False  # this FETCH set \Seen: the answer must carry FLAGS
    modseq: int = 0  # MODSEQ now (RFC 7162): the row's, or the one setting \Seen gave it
    sections: dict[Section, bytes] = field(default_factory=dict)
    # Sections to stream instead (`LargeSection`), when the caller asked for streams.
    streams: dict[Section, LargeSection] = field(default_factory=dict)


_Range = tuple[int, int, int | None]  # (uid, start, length or None for the rest)


def _span(info: MessageInfo, part: tuple[int, ...], kind: str) -> tuple[int, int | None] | None:
    """(start, length) of BODY[part.kind] in the message; None when there is nothing."""
    if not part and kind == "":
        return (0, None)
    found = section_range(info.parts, part, kind)
    if found is None:
        return None
    start, end = found
    return (start, end - start) if end > start else None


def _range_only(section: Section) -> bool:
    """BODY[]<o.n>: the answer is that byte range of the message, read as it is."""
    return (
        section.partial is not None and not section.part and not section.kind and not section.decode
    )


def _read_span(info: MessageInfo, section: Section) -> tuple[int, int | None] | None:
    """The byte range to read for `section` (before any decoding or filtering)."""
    if section.decode:
        return _span(info, section.part, "")
    if section.kind in HEADER_FIELD_KINDS:
        return _span(info, section.part, "HEADER")
    if _range_only(section):
        assert section.partial is not None
        origin, length = section.partial
        return None if origin >= info.size else (origin, length)
    return _span(info, section.part, section.kind)


# Where a streamed section's bytes come from: (start in the message, bytes of the
# message from there, transfer encoding to undo or "", partial range of the decoded data).
_Large = tuple[int, int, str, tuple[int, int] | None]


def _stream_range(info: MessageInfo, section: Section, least: int | None = None) -> _Large | None:
    """Where to stream `section` from when it is a byte range of the stored message, or
    of a part whose base64 / quoted-printable encoding can be undone chunk-wise, and at
    least `least` (default `STREAM_MIN`) long; None when it is read and answered in
    memory."""
    least = STREAM_MIN if least is None else least
    if info.size < least or section.kind in HEADER_FIELD_KINDS:
        # No section of a smaller message reaches `least` (decoding only shrinks), so
        # the FETCH of an ordinary message pays one comparison here.
        return None
    cte = ""
    if section.decode and section.part:
        found = part_encoding(info.parts, section.part)
        if found is None:
            return None
        cte = "" if found.strip().lower() in IDENTITY else found.strip().lower()
        if cte and cte not in STREAMED_ENCODINGS:
            return None  # `_finish` says NO [UNKNOWN-CTE]
    span = _read_span(info, section)
    if span is None:
        return None
    start, length = span
    if start >= info.size:
        return None
    size = info.size - start if length is None else min(length, info.size - start)
    if size < least:
        return None
    if cte:
        return (start, size, cte, section.partial)
    if section.partial is not None and not _range_only(section):
        origin, wanted = section.partial
        if origin >= size:
            return None
        start, size = start + origin, min(wanted, size - origin)
    return (start, size, "", None) if size >= least else None


def _held(info: MessageInfo, span: tuple[int, int | None] | None) -> int:
    """Bytes a section's read holds in memory."""
    if span is None:
        return 0
    start, length = span
    return max(0, info.size - start) if length is None else length


async def _large_section(store: Store, info: MessageInfo, large: _Large) -> bytes | LargeSection:
    """The streamed form of a section; a decoded one is measured first (one pass over
    it: the literal's length must be known before its first byte, RFC 9051 §4.3)."""
    start, source, cte, partial = large
    if not cte:
        return LargeSection(store, info.blob_id, start, source, source)
    length, has_nul = await measure(store, info.blob_id, start, source, cte)
    if partial is None:
        return LargeSection(store, info.blob_id, start, source, length, cte, nul=has_nul)
    skip, wanted = partial
    if skip >= length:
        return b""
    # Whether the range holds a NUL is found when it is asked (`LargeSection.has_nul`).
    return LargeSection(store, info.blob_id, start, source, min(wanted, length - skip), cte, skip)


def _finish(info: MessageInfo, section: Section, data: bytes) -> bytes:
    """The section's answer from the bytes `_read_span` located for it."""
    if section.decode:
        if section.part:
            cte = part_encoding(info.parts, section.part)
            if cte is None:
                return b""
            try:
                data = decode_transfer(data, cte)
            except UnknownTransferEncoding:
                raise UnknownEncoding("Unknown Content-Transfer-Encoding") from None
    elif section.kind in HEADER_FIELD_KINDS:
        data = header_fields(data, section.fields, section.kind == "HEADER.FIELDS.NOT")
    elif _range_only(section):
        return data  # the range read already is the answer
    if section.partial is None:
        return data
    origin, length = section.partial
    return data[origin : origin + length]


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


async def fetch_messages(
    store: Store,
    view: SelectedView,
    uids: Sequence[int],
    sections: Sequence[Section],
    *,
    set_seen: bool,
    stream: bool = False,
) -> AsyncIterator[list[FetchedMessage]]:
    """The messages `uids` (known to `view`, ascending) with the bytes of `sections`,
    in batches the caller answers before asking for more (so output streams out). With
    `stream`, large sections come in `FetchedMessage.streams` instead (see above);
    without, every section is read into memory, as a caller that needs the bytes
    themselves (the webmail parses them) asks."""
    wanted = list(dict.fromkeys(sections))
    reads = bool(wanted)
    whole_only = reads and all(s.whole_message for s in wanted)
    headers_only = reads and all(not s.part and s.kind in HEADER_KINDS for s in wanted)
    mailbox_id = view.mailbox.id
    for start in range(0, len(uids), CHUNK):
        chunk = uids[start : start + CHUNK]
        bodies: dict[int, bytes] = {}
        if whole_only or headers_only:
            read_ahead = READ_AHEAD  # looked up now: tests vary it
            # A message of STREAM_MIN or more is streamed, so it is not read here. For
            # header sections only messages up to SMALL_WHOLE come whole, with their rows
            # (one thread hop, not two); the others' headers are read as ranges after.
            each = SMALL_WHOLE if headers_only else STREAM_MIN - 1 if stream else None
            pairs = await call_store(
                store.fetch_with_bodies(mailbox_id, chunk, read_ahead, max_each=each)
            )
            infos = [info for info, _ in pairs]
            bodies = {info.uid: data for info, data in pairs if data is not None}
        else:
            infos = await call_store(store.fetch(mailbox_id, chunk))
        seen_now = await _set_seen(store, view, infos) if set_seen else {}
        infos = [i for i in infos if view.seq_of(i.uid) is not None]
        for group in _groups(infos) if reads else [infos]:
            yield await _answer(store, mailbox_id, group, wanted, bodies, seen_now, stream)


async def _set_seen(
    store: Store, view: SelectedView, infos: list[MessageInfo]
) -> dict[int, FlagRow]:
    """RFC 9051 §6.4.5: a non-PEEK body fetch sets \\Seen: one `set_flags` (which
    publishes the change) for the rows without it; the view notes what the FETCH
    responses will tell, so the change is not reported again. The changed rows by UID."""
    unseen = [i.uid for i in infos if "\\Seen" not in i.flags]
    if not unseen:
        return {}
    result = await call_store(
        store.set_flags(view.mailbox.id, unseen, frozenset({"\\Seen"}), FlagMode.ADD)
    )
    view.reported(result.changed)
    return {r.uid: r for r in result.changed}


async def fetch_whole(
    store: Store, view: SelectedView, uids: Sequence[int], *, set_seen: bool
) -> list[FetchedMessage] | None:
    """The direct path of a FETCH of whole messages (BODY[], BODY.PEEK[], RFC822) of a
    few messages: rows and bytes in one store call, no section plan, read as
    `fetch_messages` reads whole messages (each under `STREAM_MIN`, together up to
    `READ_AHEAD`), so a message between 64 KiB and 1 MiB costs no second call. None when
    one of them cannot be answered so (one to stream, more than `READ_AHEAD`, or a file
    collected since its row was read): nothing is changed then, and `fetch_messages`
    answers the command. A message expunged since the client learnt of it has no row
    and no answer, as in `fetch_messages`."""
    pairs = await call_store(
        store.fetch_with_bodies(view.mailbox.id, uids, READ_AHEAD, max_each=STREAM_MIN - 1)
    )
    if any(data is None for _, data in pairs):
        return None
    infos = [info for info, _ in pairs]
    seen_now = await _set_seen(store, view, infos) if set_seen else {}
    out: list[FetchedMessage] = []
    for info, data in pairs:
        if view.seq_of(info.uid) is None:
            continue
        assert data is not None
        changed = seen_now.get(info.uid)
        message = FetchedMessage(info, info.flags, modseq=info.modseq)
        if changed is not None:
            message.flags, message.flags_changed, message.modseq = (
                changed.flags,
                True,
                changed.modseq,
            )
        message.sections[WHOLE_MESSAGE] = data
        out.append(message)
    return out


async def _answer(
    store: Store,
    mailbox_id: int,
    group: list[MessageInfo],
    sections: list[Section],
    bodies: dict[int, bytes],
    seen_now: dict[int, FlagRow],
    stream: bool,
) -> list[FetchedMessage]:
    plans: list[list[tuple[Section, tuple[int, int | None] | None, _Large | None]]]
    plans = []
    ranges: list[_Range] = []
    for info in group:
        read = info.uid not in bodies
        streams = stream and read
        plan = [
            (section, _read_span(info, section), _stream_range(info, section) if streams else None)
            for section in sections
        ]
        held = sum(_held(info, span) for _, span, large in plan if large is None) if streams else 0
        if held > STREAM_MIN or held > 4 * info.size + 4096:
            # Sections each under STREAM_MIN add up: one command line can name thousands
            # of different ranges of one message. Stream every one that can be, so a
            # group holds at most about 4 × READ_AHEAD.
            plan = [(section, span, _stream_range(info, section, 1)) for section, span, _ in plan]
        plans.append(plan)
        if read:
            ranges.extend(
                (info.uid, *span) for _, span, large in plan if span is not None and large is None
            )
    got: dict[_Range, bytes | None] = {}
    if ranges:
        ranges = list(dict.fromkeys(ranges))
        data = await call_store(
            store.read_messages(mailbox_id, ranges), not_found="Message is gone"
        )
        got = dict(zip(ranges, data, strict=True))
    out: list[FetchedMessage] = []
    for info, plan in zip(group, plans, strict=True):
        if any(
            large is None
            and span is not None
            and info.uid not in bodies
            and got.get((info.uid, *span)) is None
            for _, span, large in plan
        ):
            # Expunged by another session (and its file collected) between the read of
            # its row and of its bytes: no answer for it, as for one whose row was
            # already gone (RFC 2180 §4.1), and the other messages' answers stand.
            continue
        changed = seen_now.get(info.uid)
        message = FetchedMessage(
            info,
            changed.flags if changed is not None else info.flags,
            changed is not None,
            changed.modseq if changed is not None else info.modseq,
        )
        whole = bodies.get(info.uid)
        for section, span, large in plan:
            if large is not None:
                value = await _large_section(store, info, large)
                if isinstance(value, LargeSection):
                    message.streams[section] = value
                else:
                    message.sections[section] = value
                continue
            if span is None:
                raw = b""
            elif whole is not None:
                begin, length = span
                raw = whole[begin:] if length is None else whole[begin : begin + length]
            else:
                fetched = got.get((info.uid, *span))
                assert fetched is not None  # messages without their bytes were skipped
                raw = fetched
            message.sections[section] = _finish(info, section, raw)
        out.append(message)
    return out


async def read_section(store: Store, mailbox_id: int, uid: int, section: Section) -> bytes | None:
    """The bytes of one section of message `uid`, as FETCH would answer them; None when
    the message or the part does not exist. For CATENATE URL parts (RFC 4469 §5): one row
    read and one byte range, located from the recorded part offsets (no re-parse)."""
    rows = await call_store(store.fetch(mailbox_id, [uid]))
    if not rows:
        return None
    info = rows[0]
    if section.part or section.kind:
        lookup = "HEADER" if section.kind in HEADER_FIELD_KINDS else section.kind
        if section_range(info.parts, section.part, lookup) is None:
            return None
    span = _read_span(info, section)
    if span is None:
        return b""
    start, length = span
    try:
        data = await call_store(store.read_message(mailbox_id, uid, start, length))
    except NoSuchMailbox:
        return None  # expunged since the row was read
    return _finish(info, section, data)
