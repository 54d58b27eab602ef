"""Parse functions of the mailbox commands, from SELECT to STATUS, and of leaving a mailbox.

SELECT/EXAMINE with select-params (RFC 9051 §6.3.2, RFC 4466 §2.2, CONDSTORE and QRESYNC
RFC 7162 §3.2.5), CREATE with USE (RFC 9051 §6.3.4, RFC 6154 §5.2), DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST with LIST-EXTENDED and LIST-STATUS (RFC 9051 §6.3.9,
RFC 5258 §3, RFC 5819), LSUB (RFC 3501 §6.3.9), NAMESPACE (RFC 2342), STATUS
(RFC 9051 §6.3.11), CHECK, CLOSE and UNSELECT (RFC 3691). LIST and STATUS share the
reader of STATUS items, which is why LIST-STATUS lives with STATUS rather than apart.
"""

from __future__ import annotations

from typing import Final

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import LPAREN, MAX_MODSEQ, MAX_NZ, RPAREN, SP
from pillarbox.proto.imap.grammar.reader import (
    CommandParser,
    ParseError,
    Reader,
    no_arguments,
    parse_sequence_set,
)


def _qresync(value: c.ParamValue | None) -> c.QResync:
    # RFC 7162 §3.2.5: (uidvalidity mod-sequence-value [SP known-uids] [SP seq-match-data])
    if not isinstance(value, tuple) or not 2 <= len(value) <= 4:
        raise ParseError("Invalid QRESYNC parameter")

    def num(v: c.ParamValue, maximum: int) -> int:
        if not isinstance(v, str) or not v.isdigit() or len(v) > 20:
            raise ParseError("Invalid QRESYNC parameter")
        n = int(v)
        if not 1 <= n <= maximum:
            raise ParseError("Invalid QRESYNC parameter")
        return n

    def seqset(v: c.ParamValue) -> c.SequenceSet:
        if not isinstance(v, str) or not v or "$" in v:
            raise ParseError("Invalid QRESYNC parameter")
        return parse_sequence_set(v.encode("ascii"))

    uidvalidity = num(value[0], MAX_NZ)
    modseq = num(value[1], MAX_MODSEQ)
    known: c.SequenceSet | None = None
    match: tuple[c.SequenceSet, c.SequenceSet] | None = None
    rest = list(value[2:])
    if rest and isinstance(rest[0], str):
        known = seqset(rest.pop(0))
    if rest:
        m = rest.pop(0)
        if not isinstance(m, tuple) or len(m) != 2:
            raise ParseError("Invalid QRESYNC parameter")
        match = (seqset(m[0]), seqset(m[1]))
    if rest:
        raise ParseError("Invalid QRESYNC parameter")
    return c.QResync(uidvalidity, modseq, known, match)


def _parse_select(r: Reader, tag: str, cls: type[c.Select] | type[c.Examine]) -> c.Command:
    # RFC 9051 §6.3.2, RFC 4466 §2.2 select-params, RFC 7162 CONDSTORE/QRESYNC
    r.sp()
    mailbox = r.mailbox()
    params: tuple[tuple[str, c.ParamValue | None], ...] = ()
    if r.maybe_sp():
        params = r.parameters()
    r.end()
    condstore = False
    qresync = None
    for name, value in params:
        if name == "CONDSTORE":
            if value is not None:
                raise ParseError("CONDSTORE takes no value")
            condstore = True
        elif name == "QRESYNC":
            qresync = _qresync(value)
    return cls(tag, mailbox, params, condstore, qresync)


def _parse_create(r: Reader, tag: str) -> c.Create:
    # RFC 9051 §6.3.4, RFC 6154 §5.2 (USE)
    r.sp()
    mailbox = r.mailbox()
    params: tuple[tuple[str, c.ParamValue | None], ...] = ()
    if r.maybe_sp():
        params = r.parameters()
    r.end()
    use: tuple[str, ...] = ()
    for name, value in params:
        if name == "USE":
            if not isinstance(value, tuple) or not all(
                isinstance(v, str) and v.startswith("\\") and len(v) > 1 for v in value
            ):
                raise ParseError("Invalid USE parameter")
            use = tuple(v for v in value if isinstance(v, str))
    return c.Create(tag, mailbox, use, params)


def _mailbox_cmd(
    cls: type[c.Delete] | type[c.Subscribe] | type[c.Unsubscribe],
) -> CommandParser:
    def parse(r: Reader, tag: str) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        r.end()
        return cls(tag, mailbox)

    return parse


def _parse_rename(r: Reader, tag: str) -> c.Rename:
    r.sp()
    old = r.mailbox()
    r.sp()
    new = r.mailbox()
    r.end()
    return c.Rename(tag, old, new)


def _parse_list(r: Reader, tag: str) -> c.List:
    # RFC 9051 §6.3.9, RFC 5258 §3 (list-select-opts, patterns, list-return-opts)
    r.sp()
    extended = False
    selection: tuple[str, ...] = ()
    if r.peek() == LPAREN:
        selection = r.atom_list()
        extended = True
        r.sp()
    reference = r.mailbox()
    r.sp()
    patterns: list[str] = []
    if r.peek() == LPAREN:
        extended = True
        r.open_paren()
        patterns.append(r.list_mailbox())
        while r.peek() == SP:
            r.pos += 1
            patterns.append(r.list_mailbox())
        r.close_paren()
    else:
        patterns.append(r.list_mailbox())
    return_opts: list[str] = []
    status: tuple[str, ...] | None = None
    if r.maybe_sp():
        extended = True
        r.expect(b"RETURN")
        r.sp()
        r.open_paren()
        first = True
        while r.peek() != RPAREN:
            if not first:
                r.sp()
            first = False
            opt = r.upper_atom("return option")
            if opt == "STATUS":
                r.sp()
                status = _status_items(r)
            else:
                return_opts.append(opt)
        r.close_paren()
    r.end()
    return c.List(tag, reference, tuple(patterns), selection, tuple(return_opts), status, extended)


def _parse_lsub(r: Reader, tag: str) -> c.Lsub:
    r.sp()
    reference = r.mailbox()
    r.sp()
    pattern = r.list_mailbox()
    r.end()
    return c.Lsub(tag, reference, pattern)


def _status_items(r: Reader) -> tuple[str, ...]:
    items = r.atom_list()
    if not items:
        raise ParseError("Missing status items")
    for item in items:
        if item not in c.STATUS_ITEMS:
            raise ParseError("Unknown status item")
    return items


def _parse_status(r: Reader, tag: str) -> c.Status:
    # RFC 9051 §6.3.11
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    items = _status_items(r)
    r.end()
    return c.Status(tag, mailbox, items)


PARSERS: Final[dict[str, CommandParser]] = {
    "NAMESPACE": no_arguments(c.Namespace),
    "CHECK": no_arguments(c.Check),
    "CLOSE": no_arguments(c.Close),
    "UNSELECT": no_arguments(c.Unselect),
    "SELECT": lambda r, t: _parse_select(r, t, c.Select),
    "EXAMINE": lambda r, t: _parse_select(r, t, c.Examine),
    "CREATE": _parse_create,
    "DELETE": _mailbox_cmd(c.Delete),
    "SUBSCRIBE": _mailbox_cmd(c.Subscribe),
    "UNSUBSCRIBE": _mailbox_cmd(c.Unsubscribe),
    "RENAME": _parse_rename,
    "LIST": _parse_list,
    "LSUB": _parse_lsub,
    "STATUS": _parse_status,
}
