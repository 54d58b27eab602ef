"""Every byte the IMAP server sends, built in one place (RFC 9051 §7, §9 response grammar).

This module owns the encoding of server output: status responses (tagged and untagged,
with response codes), continuation requests, untagged data (EXISTS, FLAGS, LIST, STATUS,
SEARCH, ESEARCH, FETCH, ENABLED, ID, NAMESPACE, CAPABILITY, BYE, VANISHED...), the
string forms (atom, quoted, literal, literal8, NIL) and FETCH item builders. Everything
returns complete `bytes` ready to write; lines end in CRLF.

Speed: a large UID FETCH is built as one `fetch()` per message from item builders; all of
them are plain bytes operations (``%`` formatting, joins), with no per-item objects, and
the server may cache constant pieces (a message's ENVELOPE bytes come pre-encoded from the
store).

Strings: `string()` picks quoted when the value is short and has no CR, LF, NUL, and no
8-bit octets unless `utf8` (RFC 6855 §3: UTF8=ACCEPT / IMAP4rev2), and a literal otherwise;
`astring()` also allows a bare atom. Mailbox names go through `mailbox()`, which applies
modified UTF-7 (RFC 3501 §5.1.3) for sessions without UTF-8.

Must not: hold state, do I/O, or decide what to answer.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import mutf7
from pillarbox.proto.imap.parser import ASTRING_CHAR, MONTHS

CRLF: Final = b"\r\n"
QUOTED_MAX: Final = 1024  # longer strings go out as literals
_MONTH_NAMES: Final = tuple(m.capitalize().encode("ascii") for m in MONTHS)


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _text(value: str | bytes) -> bytes:
    """Human-readable text: CR/LF would end the line, so they become spaces."""
    return _b(value).replace(b"\r", b" ").replace(b"\n", b" ")


# ----------------------------------------------------------------- strings (RFC 9051 §4.3)


def literal(data: bytes, *, binary: bool = False) -> bytes:
    """``{n}\\r\\n`` + data, or literal8 ``~{n}`` (RFC 3516) when `binary`."""
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def can_quote(data: bytes, *, utf8: bool = False) -> bool:
    """True if `data` may be sent as a quoted string."""
    if len(data) > QUOTED_MAX or b"\r" in data or b"\n" in data or b"\x00" in data:
        return False
    if not data.isascii():
        if not utf8:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def quoted(value: str | bytes) -> bytes:
    """A quoted string; the caller made sure it is quotable (see `can_quote`)."""
    data = _b(value)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """quoted or literal, whichever the value allows."""
    data = _b(value)
    if can_quote(data, utf8=utf8):
        return quoted(data)
    return literal(data)


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    return b"NIL" if value is None else string(value, utf8=utf8)


def _is_atom(data: bytes, table: bytes) -> bool:
    if not data or len(data) > QUOTED_MAX:
        return False
    return all(table[b] for b in data)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """Atom when possible (never for "NIL", which would read as nil), else `string`."""
    data = _b(value)
    if _is_atom(data, ASTRING_CHAR) and data.upper() != b"NIL":
        return data
    return string(data, utf8=utf8)


def mailbox(name: str, *, utf8: bool = False) -> bytes:
    """A mailbox name: UTF-8 if `utf8`, else modified UTF-7 (RFC 3501 §5.1.3)."""
    if not utf8:
        name = mutf7.encode(name)
    return astring(name, utf8=utf8)


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Compact sequence-set for sorted or unsorted numbers: ``1:3,7,9:10``."""
    nums = sorted(set(numbers))
    if not nums:
        raise ValueError("empty sequence set")
    return ordered_sequence_set(nums)


def ordered_sequence_set(numbers: Sequence[int]) -> bytes:
    """A sequence-set in the given order: only ascending runs of consecutive numbers
    become ranges (``3:5,1:2`` for 3 4 5 1 2), as RFC 5267 §3.2 asks of a sorted
    result; `sequence_set` of sorted unique numbers is the compact form."""
    if not numbers:
        raise ValueError("empty sequence set")
    out: list[bytes] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
        start = prev = n
    out.append(b"%d" % start if start == prev else b"%d:%d" % (start, prev))
    return b",".join(out)


def flag_list(flags: Iterable[str]) -> bytes:
    return b"(" + " ".join(flags).encode("ascii") + b")"


def date_time(dt: datetime.datetime) -> bytes:
    """``"17-Jul-1996 02:44:25 -0700"`` (RFC 9051 §9 date-time); naive means UTC."""
    offset = dt.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = b"-" if minutes < 0 else b"+"
    minutes = abs(minutes)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        dt.day,
        _MONTH_NAMES[dt.month - 1],
        dt.year,
        dt.hour,
        dt.minute,
        dt.second,
        sign,
        minutes // 60,
        minutes % 60,
    )


# ----------------------------------------------------------------- status responses


def _code(code: str | bytes | None) -> bytes:
    return b"" if code is None else b"[" + _b(code) + b"] "


def tagged(tag: str, status: str, text: str | bytes, code: str | bytes | None = None) -> bytes:
    """``tag OK|NO|BAD [code] text``."""
    return b"%s %s %s%s\r\n" % (tag.encode(), status.encode(), _code(code), _text(text))


def ok(tag: str, text: str | bytes = "completed", code: str | bytes | None = None) -> bytes:
    return tagged(tag, "OK", text, code)


def no(tag: str, text: str | bytes, code: str | bytes | None = None) -> bytes:
    return tagged(tag, "NO", text, code)


def bad(tag: str, text: str | bytes, code: str | bytes | None = None) -> bytes:
    return tagged(tag, "BAD", text, code)


def untagged(status: str, text: str | bytes, code: str | bytes | None = None) -> bytes:
    """``* OK|NO|BAD|PREAUTH|BYE [code] text``; e.g. ``* OK [UIDVALIDITY 7] UIDs valid``."""
    return b"* %s %s%s\r\n" % (status.encode(), _code(code), _text(text))


def untagged_ok(text: str | bytes, code: str | bytes | None = None) -> bytes:
    return untagged("OK", text, code)


def bye(text: str | bytes = "Logging out", code: str | bytes | None = None) -> bytes:
    return untagged("BYE", text, code)


def continuation(text: bytes = b"Ready") -> bytes:
    """``+ text`` (RFC 9051 §7.5): after `ContinuationNeeded`. For SASL use
    `ServerConnection.auth_challenge`, for IDLE `ServerConnection.idle_accepted`."""
    return b"+ " + _text(text) + CRLF


# ----------------------------------------------------------------- untagged data


def capability(caps: Iterable[str]) -> bytes:
    return b"* CAPABILITY " + " ".join(caps).encode("ascii") + CRLF


def capability_code(caps: Iterable[str]) -> bytes:
    """``CAPABILITY ...`` for a response code (greeting, LOGIN OK)."""
    return b"CAPABILITY " + " ".join(caps).encode("ascii")


def enabled(caps: Iterable[str]) -> bytes:
    """``* ENABLED ...`` (RFC 5161 §3.2), also when empty."""
    names = " ".join(caps).encode("ascii")
    return b"* ENABLED" + (b" " + names if names else b"") + CRLF


def exists(count: int) -> bytes:
    return b"* %d EXISTS\r\n" % count


def recent(count: int) -> bytes:
    """``* n RECENT`` (IMAP4rev1 only)."""
    return b"* %d RECENT\r\n" % count


def expunge(seq: int) -> bytes:
    return b"* %d EXPUNGE\r\n" % seq


def vanished(uids: Iterable[int] | bytes, *, earlier: bool = False) -> bytes:
    """``* VANISHED [(EARLIER)] uid-set`` (RFC 7162 §3.2.10)."""
    uid_set = uids if isinstance(uids, bytes) else sequence_set(uids)
    return b"* VANISHED " + (b"(EARLIER) " if earlier else b"") + uid_set + CRLF


def flags(flag_names: Iterable[str]) -> bytes:
    return b"* FLAGS " + flag_list(flag_names) + CRLF


def list_response(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    *,
    utf8: bool = False,
    extended: Iterable[bytes] = (),
    command: str = "LIST",
) -> bytes:
    """``* LIST (\\HasNoChildren) "/" name [ext]`` (RFC 9051 §7.3.1, RFC 5258 §3.5).

    `extended` items are pre-encoded, e.g. ``b'("CHILDINFO" ("SUBSCRIBED"))'``.
    `command` "LSUB" gives the IMAP4rev1 LSUB response.
    """
    delim = b"NIL" if delimiter is None else quoted(delimiter)
    ext = b"".join(b" " + e for e in extended)
    return b"* %s %s %s %s%s\r\n" % (
        command.encode(),
        flag_list(attributes),
        delim,
        mailbox(name, utf8=utf8),
        ext,
    )


def status(name: str, items: Iterable[tuple[str, int]], *, utf8: bool = False) -> bytes:
    """``* STATUS name (MESSAGES 3 UIDNEXT 9)`` (RFC 9051 §7.3.5)."""
    body = b" ".join(b"%s %d" % (k.encode("ascii"), v) for k, v in items)
    return b"* STATUS " + mailbox(name, utf8=utf8) + b" (" + body + b")" + CRLF


def quotaroot(name: str, roots: Iterable[str], *, utf8: bool = False) -> bytes:
    """``* QUOTAROOT INBOX ""`` (RFC 9208 §5.2): the quota roots a mailbox is under."""
    out = b"* QUOTAROOT " + mailbox(name, utf8=utf8)
    for root in roots:
        out += b" " + astring(root, utf8=utf8)
    return out + CRLF


def quota(root: str, resources: Iterable[tuple[str, int, int]], *, utf8: bool = False) -> bytes:
    """``* QUOTA "" (STORAGE 10 512 MESSAGE 3 100)`` (RFC 9208 §5.1): each resource's
    name, usage and limit; the list holds at least one resource (RFC 9208 §9)."""
    body = b" ".join(b"%s %d %d" % (n.encode("ascii"), used, limit) for n, used, limit in resources)
    return b"* QUOTA " + astring(root, utf8=utf8) + b" (" + body + b")" + CRLF


def search(numbers: Iterable[int], *, modseq: int | None = None) -> bytes:
    """``* SEARCH 2 3 5`` (RFC 3501 §7.2.5), with ``(MODSEQ n)`` for CONDSTORE."""
    out = b"* SEARCH" + b"".join(b" %d" % n for n in numbers)
    if modseq is not None:
        out += b" (MODSEQ %d)" % modseq
    return out + CRLF


def esearch(
    tag: str | None,
    *,
    uid: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
    all_: Iterable[int] | bytes | None = None,
    count: int | None = None,
    modseq: int | None = None,
) -> bytes:
    """``* ESEARCH (TAG "t") UID MIN 1 MAX 9 ALL 1:9 COUNT 9 [MODSEQ n]`` (RFC 4731 §3.1)."""
    parts = [b"* ESEARCH"]
    if tag is not None:
        parts.append(b"(TAG " + quoted(tag) + b")")
    if uid:
        parts.append(b"UID")
    if minimum is not None:
        parts.append(b"MIN %d" % minimum)
    if maximum is not None:
        parts.append(b"MAX %d" % maximum)
    if all_ is not None:
        seq = all_ if isinstance(all_, bytes) else sequence_set(all_)
        parts.append(b"ALL " + seq)
    if count is not None:
        parts.append(b"COUNT %d" % count)
    if modseq is not None:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + CRLF


def fetch(seq: int, items: Sequence[bytes]) -> bytes:
    """``* seq FETCH (item item ...)`` from items built by the ``fetch_*`` helpers."""
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(items))


def id_response(params: Mapping[str, str | None] | None) -> bytes:
    """``* ID (...)`` or ``* ID NIL`` (RFC 2971 §3.2)."""
    if not params:
        return b"* ID NIL\r\n"
    body = b" ".join(string(k) + b" " + nstring(v) for k, v in params.items())
    return b"* ID (" + body + b")\r\n"


Namespace = Sequence[tuple[str, str | None]] | None


def namespace(
    personal: Namespace, other: Namespace = None, shared: Namespace = None, *, utf8: bool = False
) -> bytes:
    """``* NAMESPACE (("" "/")) NIL NIL`` (RFC 2342 §5, RFC 9051 §7.3.4)."""

    def one(ns: Namespace) -> bytes:
        if not ns:
            return b"NIL"
        return (
            b"("
            + b"".join(
                b"("
                + string(_b(prefix if utf8 else mutf7.encode(prefix)), utf8=utf8)
                + b" "
                + (b"NIL" if d is None else quoted(d))
                + b")"
                for prefix, d in ns
            )
            + b")"
        )

    return b"* NAMESPACE %s %s %s\r\n" % (one(personal), one(other), one(shared))


# ----------------------------------------------------------------- FETCH items (RFC 9051 §7.5.2)


def fetch_flags(flag_names: Iterable[str]) -> bytes:
    return b"FLAGS " + flag_list(flag_names)


def fetch_uid(uid: int) -> bytes:
    return b"UID %d" % uid


def fetch_modseq(modseq: int) -> bytes:
    """``MODSEQ (n)`` (RFC 7162 §3.1.4.1)."""
    return b"MODSEQ (%d)" % modseq


def fetch_internaldate(dt: datetime.datetime) -> bytes:
    return b"INTERNALDATE " + date_time(dt)


def fetch_size(size: int) -> bytes:
    return b"RFC822.SIZE %d" % size


def fetch_envelope(encoded: bytes) -> bytes:
    """``ENVELOPE (...)`` from the pre-encoded envelope the store keeps."""
    return b"ENVELOPE " + encoded


def fetch_bodystructure(encoded: bytes, *, extensible: bool = True) -> bytes:
    """``BODYSTRUCTURE (...)``, or ``BODY (...)`` (non-extensible form) if not `extensible`."""
    return (b"BODYSTRUCTURE " if extensible else b"BODY ") + encoded


def section_name(item: c.FetchBody) -> bytes:
    """The response name of a section item: ``BODY[1.2.HEADER.FIELDS (A B)]<0>``.

    PEEK never appears in responses (RFC 9051 §7.5.2); only the partial's origin does.
    """
    spec = ".".join(str(p) for p in item.part).encode("ascii")
    if item.kind:
        spec = (spec + b"." if spec else b"") + item.kind.encode("ascii")
        if item.fields:
            spec += b" (" + b" ".join(astring(f) for f in item.fields) + b")"
    out = (b"BINARY[" if item.binary else b"BODY[") + spec + b"]"
    if item.partial is not None:
        out += b"<%d>" % item.partial.origin
    return out


def fetch_section(item: c.FetchBody, data: bytes | None) -> bytes:
    """``BODY[...] {n}\\r\\n<data>`` or ``... NIL``; BINARY with NUL uses literal8 (RFC 3516)."""
    if data is None:
        return section_name(item) + b" NIL"
    return section_name(item) + b" " + literal(data, binary=item.binary and b"\x00" in data)


def fetch_binary_size(item: c.FetchBinarySize, size: int) -> bytes:
    spec = ".".join(str(p) for p in item.part).encode("ascii")
    return b"BINARY.SIZE[%s] %d" % (spec, size)


def fetch_literal_item(name: str, data: bytes | None) -> bytes:
    """RFC822, RFC822.HEADER, RFC822.TEXT (or any name followed by an nstring literal)."""
    if data is None:
        return name.encode("ascii") + b" NIL"
    return name.encode("ascii") + b" " + literal(data)


def fetch_item(name: str, value: bytes) -> bytes:
    """Any other pre-encoded item, e.g. ``fetch_item("EMAILID", b"(M123)")``."""
    return name.encode("ascii") + b" " + value


__all__ = [
    "astring",
    "bad",
    "bye",
    "can_quote",
    "capability",
    "capability_code",
    "continuation",
    "date_time",
    "enabled",
    "esearch",
    "exists",
    "expunge",
    "fetch",
    "fetch_binary_size",
    "fetch_bodystructure",
    "fetch_envelope",
    "fetch_flags",
    "fetch_internaldate",
    "fetch_item",
    "fetch_literal_item",
    "fetch_modseq",
    "fetch_section",
    "fetch_size",
    "fetch_uid",
    "flag_list",
    "flags",
    "id_response",
    "list_response",
    "literal",
    "mailbox",
    "namespace",
    "no",
    "nstring",
    "ok",
    "quoted",
    "recent",
    "search",
    "section_name",
    "sequence_set",
    "status",
    "string",
    "tagged",
    "untagged",
    "untagged_ok",
    "vanished",
]
