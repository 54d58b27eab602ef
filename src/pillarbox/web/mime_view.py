"""A message as the reading page shows it: headers, the body to display, attachments.

Built from the stored bytes with the `message` package's one MIME walker (`parts.walk`,
the same tree IMAP BODYSTRUCTURE and BODY[section] come from), so part numbers here are
IMAP section numbers (RFC 9051 §6.4.5) and an attachment link names exactly what
``BINARY[part]`` returns. Which part to show follows RFC 2046: in a
multipart/alternative the last part we can show is the best one (§5.1.4); in other
multiparts every inline text part is shown in order (§5.1.3), and everything else —
parts with a file name, ``Content-Disposition: attachment`` (RFC 2183 §2.2), non-text
parts, attached messages — is listed as an attachment.

Inline images (RFC 2392, RFC 2387): an image part with a Content-ID that the shown HTML
names in a ``cid:`` URL is shown in the HTML and not listed again, unless it also says
``Content-Disposition: attachment`` (then the sender offered it as a file too); an
image with a Content-ID that the HTML does not name is listed, or it would be lost.
`frame_source` turns the named ones into ``data:`` URIs for the frame, up to
`INLINE_LIMIT` bytes in all (the rest stay blank: the frame may load nothing else).

Must not: render HTML (it only hands the decoded markup on to `html_clean`), or decode
the bytes of attachments (they are decoded when downloaded).
"""

from __future__ import annotations

import base64
import contextlib
import re
from dataclasses import dataclass, field

from pillarbox.message.addresses import addresses, format_address_list
from pillarbox.message.charsets import decode_bytes
from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.headers import first_value, scan_header
from pillarbox.message.mime import (
    param,
    param_text,
    parse_content_type,
    parse_disposition,
    parse_transfer_encoding,
)
from pillarbox.message.parts import Entity, walk
from pillarbox.message.transfer import UnknownTransferEncoding, decode_transfer
from pillarbox.web.html_clean import content_id

TEXT_LIMIT = 4 * 1024 * 1024  # characters of one text part shown; the rest is cut
INLINE_LIMIT = 8 * 1024 * 1024  # decoded bytes of cid: images put into one frame
_CID_URL = re.compile(r"""cid:([^\s"'<>()]+)""", re.IGNORECASE)
_MEDIA_TOKEN = re.compile(r"[a-z0-9][a-z0-9.+-]*")


@dataclass(frozen=True, slots=True)
class Attachment:
    part: str  # IMAP section number, "2" or "2.1"
    filename: str  # as the sender named it (made safe only when downloaded)
    mime_type: str
    size: int  # decoded size, estimated from the encoded one

    @property
    def size_text(self) -> str:
        return human_size(self.size)


@dataclass(slots=True)
class MessageView:
    subject: str = ""
    sender: str = ""
    sender_address: str = ""  # the first From address, "local@domain" ("" if none)
    to: str = ""
    cc: str = ""
    date: str = ""
    texts: list[str] = field(default_factory=list)  # text/plain parts, in order
    html_part: str | None = None  # section of the text/html part shown in the frame
    html_text: str = field(default="", repr=False)  # its markup, decoded, not cleaned
    attachments: list[Attachment] = field(default_factory=list)
    inline: dict[str, str] = field(default_factory=dict)  # Content-ID -> section shown


def header_text(ent: Entity, name: str) -> str:
    raw = ent.header(name)
    return decode_header_value(raw) if raw is not None else ""


def filename_of(ent: Entity) -> str:
    """The part's file name: Content-Disposition filename (RFC 2183 §2.3; RFC 2231
    extended values decoded), else the Content-Type name parameter."""
    name = None
    raw = ent.header("content-disposition")
    parsed = parse_disposition(raw) if raw is not None else None
    if parsed is not None:
        name = param_text(parsed[1], "filename")
    if not name:
        name = param_text(ent.params, "name")
    if not name:
        return ""
    if "=?" in name:  # encoded-words in a parameter: not allowed, but common
        return decode_header_value(name.encode("latin-1", "replace"))
    return name


def _is_attachment(ent: Entity) -> bool:
    raw = ent.header("content-disposition")
    parsed = parse_disposition(raw) if raw is not None else None
    if parsed is not None and parsed[0] == "attachment":
        return True
    shown = ent.type == "text" and ent.subtype in ("plain", "html")
    return not shown or bool(filename_of(ent))


def decoded_text(data: bytes, ent: Entity) -> str:
    """The text of a text part: transfer encoding undone, charset decoded, capped."""
    raw = data[ent.b : ent.e]
    # An unknown encoding: shown as it is, which is better than nothing.
    with contextlib.suppress(UnknownTransferEncoding):
        raw = decode_transfer(raw, ent.cte)
    return decode_bytes(raw, param(ent.params, "charset"))[:TEXT_LIMIT]


def _section(number: tuple[int, ...]) -> str:
    return ".".join(str(n) for n in number)


def _estimated_size(data: bytes, ent: Entity) -> int:
    """The decoded size: exact for base64 but for padding (line breaks are not counted;
    `bytes.count` over the range copies nothing), the encoded size otherwise."""
    size = ent.e - ent.b
    if ent.cte != "base64":
        return size
    breaks = data.count(b"\n", ent.b, ent.e) + data.count(b"\r", ent.b, ent.e)
    return (size - breaks) * 3 // 4


def _showable(ent: Entity) -> bool:
    if ent.children is not None:
        return True
    return ent.message is None and ent.type == "text" and ent.subtype in ("plain", "html")


def human_size(size: int) -> str:
    """Bytes in the units a person reads (1024-based, as file managers show them)."""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def _content_id(ent: Entity) -> str:
    """The part's Content-ID (RFC 2045 §7) without angle brackets, "" if none."""
    raw = ent.header("content-id")
    if raw is None:
        return ""
    return raw.decode("utf-8", "replace").strip().strip("<>").strip()


def _disposition_attachment(ent: Entity) -> bool:
    raw = ent.header("content-disposition")
    parsed = parse_disposition(raw) if raw is not None else None
    return parsed is not None and parsed[0] == "attachment"


def cid_references(markup: str) -> set[str]:
    """The Content-IDs that ``cid:`` URLs in `markup` name (RFC 2392 §2: %-encoded)."""
    return {content_id(m) for m in _CID_URL.findall(markup)}


class _Builder:
    def __init__(self, data: bytes, view: MessageView) -> None:
        self.data = data
        self.view = view
        # image parts with a Content-ID: (cid, section, entity, offered as a file too)
        self.images: list[tuple[str, tuple[int, ...], Entity, bool]] = []
        self.html: Entity | None = None

    def entity(self, ent: Entity, number: tuple[int, ...]) -> None:
        if ent.children is not None:
            children = list(enumerate(ent.children, 1))
            if ent.subtype == "alternative":
                best = [(i, c) for i, c in children if _showable(c)][-1:]
                children = best or children[:1]
            for index, child in children:
                self.entity(child, (*number, index))
            return
        part = number or (1,)  # the body of a single-part message is part 1
        cid = _content_id(ent) if ent.type == "image" and ent.message is None else ""
        if cid:
            self.images.append((cid, part, ent, _disposition_attachment(ent)))
            return
        if ent.message is not None or _is_attachment(ent):
            name = filename_of(ent) or ("message.eml" if ent.message is not None else "")
            self.view.attachments.append(
                Attachment(_section(part), name, ent.mime_type, _estimated_size(self.data, ent))
            )
        elif ent.subtype == "html":
            if self.view.html_part is None:
                self.view.html_part = _section(part)
                self.html = ent
            else:  # a second HTML body part: offered as a file rather than lost
                self.view.attachments.append(
                    Attachment(
                        _section(part), "part.html", "text/html", _estimated_size(self.data, ent)
                    )
                )
        else:
            self.view.texts.append(decoded_text(self.data, ent))


def message_view(data: bytes) -> MessageView:
    root, _defects = walk(data)
    view = MessageView(
        subject=header_text(root, "subject"),
        sender=_addresses(root, "from"),
        to=_addresses(root, "to"),
        cc=_addresses(root, "cc"),
        date=header_text(root, "date"),
    )
    addrs = addresses(root.header("from") or b"")
    view.sender_address = addrs[0][1] if addrs else ""
    builder = _Builder(data, view)
    builder.entity(root, ())
    if builder.html is not None:
        view.html_text = decoded_text(data, builder.html)
    named = cid_references(view.html_text)
    for cid, part, ent, as_file in builder.images:
        if cid in named:
            view.inline.setdefault(cid, _section(part))
        if cid not in named or as_file:
            name = filename_of(ent)
            view.attachments.append(
                Attachment(_section(part), name, ent.mime_type, _estimated_size(data, ent))
            )
    view.attachments.sort(key=lambda a: tuple(int(n) for n in a.part.split(".")))
    return view


def entity_at(root: Entity, part: tuple[int, ...]) -> Entity | None:
    """The entity of IMAP section `part` as `message_view` numbers them (the body of a
    single-part message is 1); None if there is none. Attached messages are not entered."""
    ent = root
    if root.children is None:
        return root if part == (1,) else None
    for index in part:
        if ent.children is None or not 0 < index <= len(ent.children):
            return None
        ent = ent.children[index - 1]
    return ent


@dataclass(frozen=True, slots=True)
class FrameSource:
    markup: str  # the HTML part's text, decoded, not yet cleaned
    inline: dict[str, str]  # Content-ID -> data: URI of the image it names


def _data_uri(data: bytes, ent: Entity) -> str | None:
    raw = data[ent.b : ent.e]
    try:
        decoded = decode_transfer(raw, ent.cte)
    except UnknownTransferEncoding:
        return None
    subtype = ent.subtype.lower()
    if not _MEDIA_TOKEN.fullmatch(subtype):
        return None
    return f"data:image/{subtype};base64,{base64.b64encode(decoded).decode('ascii')}"


def frame_source(data: bytes, part: tuple[int, ...]) -> FrameSource | None:
    """The text of HTML part `part` and, when it is the one the page shows, its inline
    images as ``data:`` URIs, in message order until `INLINE_LIMIT` decoded bytes; None
    if `part` is no HTML part."""
    view = message_view(data)
    root, _defects = walk(data)
    ent = entity_at(root, part)
    if ent is None or ent.children is not None or ent.mime_type != "text/html":
        return None
    if _section(part) != view.html_part:  # another HTML part, offered as a file
        return FrameSource(decoded_text(data, ent), {})
    inline: dict[str, str] = {}
    budget = INLINE_LIMIT
    for cid, section in view.inline.items():
        image = entity_at(root, tuple(int(n) for n in section.split(".")))
        if image is None or _estimated_size(data, image) > budget:
            continue
        uri = _data_uri(data, image)
        if uri is not None:
            budget -= len(uri) * 3 // 4
            inline[cid] = uri
    return FrameSource(view.html_text, inline)


def _addresses(root: Entity, name: str) -> str:
    raw = root.header(name)
    return format_address_list(raw.decode("latin-1")) if raw is not None else ""


@dataclass(frozen=True, slots=True)
class PartInfo:
    """What a part's own header (BODY[part.MIME]) says about it."""

    mime_type: str
    charset: str | None
    filename: str


def part_info(mime_header: bytes) -> PartInfo:
    """Type, charset and file name of a part from its MIME header (RFC 2045 §5.2:
    text/plain when Content-Type is missing or unusable)."""
    fields, _end = scan_header(mime_header)
    raw = first_value(fields, "content-type")
    parsed = parse_content_type(raw) if raw is not None else None
    mtype, subtype, params = parsed if parsed is not None else ("text", "plain", [])
    cte = parse_transfer_encoding(first_value(fields, "content-transfer-encoding"))
    ent = Entity(0, 0, 0, fields, mtype, subtype, params, cte)
    return PartInfo(ent.mime_type, param(params, "charset"), filename_of(ent))
