"""Test-side serializer: command dataclasses → client wire bytes.

Written independently of the parser so round-trip tests check one against the other. Each
string argument is written in a form chosen by the caller's `choose` function (atom,
quoted, synchronising or non-synchronising literal), falling back to a literal when the
chosen form cannot carry the value.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from pillarbox.proto.imap import commands as c

Choose = Callable[[], str]  # returns "atom", "quoted", "literal" or "literal+"

_ATOM_OK = set(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#&'+,-.:;<=>?@^_`|~$/["
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class Writer:
    def __init__(self, choose: Choose) -> None:
        self.choose = choose

    def string(self, value: bytes | str, *, atom_ok: bool = True) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        form = self.choose()
        if form == "atom" and atom_ok and data and all(b in _ATOM_OK for b in data):
            return data
        if form in ("atom", "quoted") and data.isascii() and not set(data) & set(b"\r\n\x00"):
            return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
        plus = b"+" if form == "literal+" else b""
        return b"{%d%s}\r\n" % (len(data), plus) + data

    def seqset(self, s: c.SequenceSet) -> bytes:
        if s.saved:
            return b"$"

        def num(n: int | None) -> bytes:
            return b"*" if n is None else b"%d" % n

        return b",".join(
            num(r.start) if r.start == r.end else num(r.start) + b":" + num(r.end) for r in s
        )

    def date(self, d: datetime.date) -> bytes:
        return b"%d-%s-%04d" % (d.day, MONTHS[d.month - 1].encode(), d.year)

    def date_time(self, dt: datetime.datetime) -> bytes:
        off = dt.utcoffset()
        assert off is not None
        minutes = int(off.total_seconds()) // 60
        sign = b"-" if minutes < 0 else b"+"
        minutes = abs(minutes)
        return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
            dt.day,
            MONTHS[dt.month - 1].encode(),
            dt.year,
            dt.hour,
            dt.minute,
            dt.second,
            sign,
            minutes // 60,
            minutes % 60,
        )

    def search_key(self, k: c.SearchKey) -> bytes:
        flag_names = {
            ("\\Answered", True): b"ANSWERED",
            ("\\Deleted", True): b"DELETED",
            ("\\Draft", True): b"DRAFT",
            ("\\Flagged", True): b"FLAGGED",
            ("\\Seen", True): b"SEEN",
            ("\\Recent", True): b"RECENT",
            ("\\Answered", False): b"UNANSWERED",
            ("\\Deleted", False): b"UNDELETED",
            ("\\Draft", False): b"UNDRAFT",
            ("\\Flagged", False): b"UNFLAGGED",
            ("\\Seen", False): b"UNSEEN",
            ("\\Recent", False): b"OLD",
        }
        match k:
            case c.SearchAll():
                return b"ALL"
            case c.SearchFlag(flag, present):
                if (flag, present) in flag_names:
                    return flag_names[(flag, present)]
                return (b"KEYWORD " if present else b"UNKEYWORD ") + flag.encode()
            case c.SearchHeader(field, value):
                if field in ("from", "to", "cc", "bcc", "subject"):
                    return field.upper().encode() + b" " + self.string(value)
                return b"HEADER " + self.string(field) + b" " + self.string(value)
            case c.SearchText(value, body_only):
                return (b"BODY " if body_only else b"TEXT ") + self.string(value)
            case c.SearchDate(op, date, sent):
                return (b"SENT" if sent else b"") + op.upper().encode() + b" " + self.date(date)
            case c.SearchSize(op, size):
                return op.upper().encode() + b" %d" % size
            case c.SearchSequence(seqset, uid):
                return (b"UID " if uid else b"") + self.seqset(seqset)
            case c.SearchModseq(modseq, name, etype):
                if name is None:
                    return b"MODSEQ %d" % modseq
                assert etype is not None
                quoted = name.encode().replace(b"\\", b"\\\\")
                return b'MODSEQ "%s" %s %d' % (quoted, etype.encode(), modseq)
            case c.SearchSaveDate(op, date):
                return b"SAVED" + op.upper().encode() + b" " + self.date(date)
            case c.SearchEmailId(blob_id):
                if blob_id is None:
                    return b"EMAILID not-ours"
                return b"EMAILID M%016x" % blob_id
            case c.SearchThreadId(thread_id):
                if thread_id is None:
                    return b"THREADID not-ours"
                return b"THREADID T%016x" % thread_id
            case c.SearchWithin(op, seconds):
                return op.upper().encode() + b" %d" % seconds
            case c.SearchNot(key):
                return b"NOT " + self.search_key(key)
            case c.SearchOr(left, right):
                return b"OR " + self.search_key(left) + b" " + self.search_key(right)
            case c.SearchAnd(keys):
                return b"(" + b" ".join(self.search_key(x) for x in keys) + b")"
        raise AssertionError(k)

    def fetch_item(self, item: c.FetchItem) -> bytes:
        if isinstance(item, c.FetchAttribute):
            return item.name.encode()
        part = ".".join(str(p) for p in item.part).encode()
        if isinstance(item, c.FetchBinarySize):
            return b"BINARY.SIZE[" + part + b"]"
        name = b"BINARY" if item.binary else b"BODY"
        if item.peek:
            name += b".PEEK"
        spec = part
        if item.kind:
            spec = (spec + b"." if spec else b"") + item.kind.encode()
        if item.fields:
            spec += b" (" + b" ".join(self.string(f) for f in item.fields) + b")"
        out = name + b"[" + spec + b"]"
        if item.partial:
            out += b"<%d.%d>" % (item.partial.origin, item.partial.length)
        return out

    def command(self, cmd: c.Command) -> bytes:
        t = cmd.tag.encode() + b" "
        match cmd:
            case c.Login(_, user, password):
                return t + b"LOGIN " + self.string(user) + b" " + self.string(password)
            case c.Authenticate(_, mech, ir):
                import base64

                out = t + b"AUTHENTICATE " + mech.encode()
                if ir is not None:
                    out += b" " + (base64.b64encode(ir) if ir else b"=")
                return out
            case c.Enable(_, caps):
                return t + b"ENABLE " + b" ".join(x.encode() for x in caps)
            case c.Select(_, mbox, _params, condstore) | c.Examine(_, mbox, _params, condstore):
                out = t + cmd.NAME.encode() + b" " + self.string(mbox)
                return out + (b" (CONDSTORE)" if condstore else b"")
            case c.Delete(_, mbox) | c.Subscribe(_, mbox) | c.Unsubscribe(_, mbox):
                return t + cmd.NAME.encode() + b" " + self.string(mbox)
            case c.Rename(_, old, new):
                return t + b"RENAME " + self.string(old) + b" " + self.string(new)
            case c.Status(_, mbox, items):
                return t + b"STATUS " + self.string(mbox) + b" (" + " ".join(items).encode() + b")"
            case c.List(_, ref, patterns, sel, ret, status, extended):
                out = t + b"LIST "
                if sel or extended:
                    out += b"(" + " ".join(sel).encode() + b") "
                out += self.string(ref) + b" "
                pats = [self.string(p, atom_ok=False) for p in patterns]
                out += b"(" + b" ".join(pats) + b")" if extended else pats[0]
                if extended:
                    opts = [o.encode() for o in ret]
                    if status is not None:
                        opts.append(b"STATUS (" + " ".join(status).encode() + b")")
                    out += b" RETURN (" + b" ".join(opts) + b")"
                return out
            case c.Append(_, mbox, messages):
                out = t + b"APPEND " + self.string(mbox)
                for m in messages:
                    if m.flags:
                        out += b" (" + " ".join(m.flags).encode() + b")"
                    if m.internal_date is not None:
                        out += b" " + self.date_time(m.internal_date)
                    plus = b"+" if self.choose() == "literal+" else b""
                    lit = b"~{%d%s}\r\n" if m.binary else b"{%d%s}\r\n"
                    body = lit % (len(m.data), plus) + m.data
                    out += b" " + (b"UTF8 (" + body + b")" if m.utf8 else body)
                return out
            case c.Search(_, uid, charset, criteria, ret):
                out = t + (b"UID " if uid else b"") + b"SEARCH"
                if ret is not None:
                    out += b" RETURN (" + " ".join(ret).encode() + b")"
                if charset is not None:
                    out += b" CHARSET " + charset.encode()
                return out + b" " + b" ".join(self.search_key(k) for k in criteria.keys)
            case c.Fetch(_, uid, seqset, items, changed, vanished):
                out = t + (b"UID " if uid else b"") + b"FETCH " + self.seqset(seqset) + b" "
                out += b"(" + b" ".join(self.fetch_item(i) for i in items) + b")"
                if changed is not None:
                    out += b" (CHANGEDSINCE %d%s)" % (changed, b" VANISHED" if vanished else b"")
                return out
            case c.Store(_, uid, seqset, mode, silent, flags, unchanged):
                out = t + (b"UID " if uid else b"") + b"STORE " + self.seqset(seqset) + b" "
                if unchanged is not None:
                    out += b"(UNCHANGEDSINCE %d) " % unchanged
                out += {"add": b"+", "remove": b"-", "replace": b""}[mode] + b"FLAGS"
                out += b".SILENT" if silent else b""
                return out + b" (" + " ".join(flags).encode() + b")"
            case c.Copy(_, uid, seqset, mbox) | c.Move(_, uid, seqset, mbox):
                out = t + (b"UID " if uid else b"") + cmd.NAME.encode() + b" "
                return out + self.seqset(seqset) + b" " + self.string(mbox)
            case c.UidExpunge(_, seqset):
                return t + b"UID EXPUNGE " + self.seqset(seqset)
            case c.Id(_, params):
                if params is None:
                    return t + b"ID NIL"
                body = b" ".join(
                    self.string(k, atom_ok=False)
                    + b" "
                    + (b"NIL" if v is None else self.string(v, atom_ok=False))
                    for k, v in params
                )
                return t + b"ID (" + body + b")"
        return t + cmd.NAME.encode()
