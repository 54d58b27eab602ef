"""The IMAP command grammar: one framed command (bytes) in, one `commands` dataclass out.

Theory of operation: `ServerConnection` frames a command (its lines and the literals they
announce, joined back with canonical CRLFs, the final CRLF removed) and calls
`parse_command`. A `Reader` walks the bytes with an index; each command has one parse
function that reads its arguments with the reader's token methods (atom, astring, quoted,
literal, sequence-set, flag list, date...), following the ABNF of RFC 9051 §9 and the
extension RFCs named at each function. Literals are re-read inline: the framing already
checked their sizes, so ``{n}\\r\\n`` is followed by exactly n bytes here.

Errors raise `ParseError` with a short, client-safe message (never echoing client bytes);
the connection turns it into ``tag BAD <message>``. Nesting (parenthesised lists, NOT/OR
chains) is bounded by `max_depth` so no input can exhaust the Python stack.

Must not: do I/O, know about states, mailboxes or credentials.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Callable
from typing import Final, Literal

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar import dates
from pillarbox.proto.imap.grammar.chars import (
    ASTRING_CHAR,
    ATOM_CHAR,
    DIGIT,
    DQUOTE,
    FETCH_NAME_CHAR,
    LPAREN,
    MAX_MODSEQ,
    MAX_NZ,
    MONTHS,
    RPAREN,
    SP,
    TAG_CHAR,
    TILDE,
)
from pillarbox.proto.imap.grammar.reader import ParseError, Reader, parse_sequence_set


def parse_tag(line: bytes) -> str | None:
    """The tag at the start of a command line, or None if there is no valid one."""
    end = 0
    n = len(line)
    while end < n and TAG_CHAR[line[end]]:
        end += 1
    if end == 0 or (end < n and line[end] != SP):
        return None
    return line[:end].decode("ascii")


def command_name(line: bytes) -> str | None:
    """The upper-cased command word after the tag ("UID FETCH" for UID commands), or None."""
    parts = line.split(b" ", 3)
    if len(parts) < 2:
        return None
    name = parts[1].rstrip(b"\r\n").upper()
    if name == b"UID" and len(parts) >= 3:
        name = b"UID " + parts[2].rstrip(b"\r\n").upper()
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _no_args(cls: type[c.Command]) -> Callable[[Reader, str], c.Command]:
    def parse(r: Reader, tag: str) -> c.Command:
        r.end()
        return cls(tag)

    return parse


def _parse_authenticate(r: Reader, tag: str) -> c.Authenticate:
    # RFC 9051 §6.2.2, RFC 4959 (SASL-IR)
    r.sp()
    mechanism = r.upper_atom("mechanism")
    initial: bytes | None = None
    if r.maybe_sp():
        raw = r.run(ATOM_CHAR)
        initial = decode_base64(raw)
    r.end()
    return c.Authenticate(tag, mechanism, initial)


def decode_base64(raw: bytes) -> bytes:
    """SASL base64 (RFC 9051 §6.2.2): "=" is the empty response; strict alphabet."""
    if raw == b"=":
        return b""
    if not raw:
        raise ParseError("Invalid base64")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("Invalid base64") from None


def _parse_login(r: Reader, tag: str) -> c.Login:
    r.sp()
    user = r.text(r.astring(), "User name")
    r.sp()
    password = r.text(r.astring(), "Password")
    r.end()
    return c.Login(tag, user, password)


def _parse_enable(r: Reader, tag: str) -> c.Enable:
    # RFC 5161: ENABLE 1*(SP capability)
    caps = []
    r.sp()
    caps.append(r.upper_atom("capability"))
    while r.maybe_sp():
        caps.append(r.upper_atom("capability"))
    r.end()
    return c.Enable(tag, tuple(caps))


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
) -> Callable[[Reader, str], c.Command]:
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


def _parse_append(r: Reader, tag: str) -> c.Append:
    # RFC 9051 §6.3.12, RFC 3502 (MULTIAPPEND), RFC 3516 (literal8), RFC 6855 §4 (UTF8)
    r.sp()
    mailbox = r.mailbox()
    messages: list[c.AppendMessage] = []
    while not r.at_end():
        r.sp()
        flags: tuple[str, ...] = ()
        date: datetime.datetime | None = None
        if r.peek() == LPAREN:
            flags = r.flag_list()
            r.sp()
        if r.peek() == DQUOTE:
            date = dates.date_time(r)
            r.sp()
        utf8 = False
        if r.accept(b"UTF8"):
            r.sp()
            r.open_paren()
            if r.peek() != TILDE:
                raise ParseError("UTF8 data must be a binary literal")
            data, binary = r.literal(allow_binary=True)
            r.close_paren()
            utf8 = True
        else:
            data, binary = r.literal(allow_binary=True)
        messages.append(c.AppendMessage(flags, date, data, binary, utf8))
    if not messages:
        raise ParseError("Missing message")
    return c.Append(tag, mailbox, tuple(messages))


# ----- SEARCH -----

_FLAG_KEYS: Final = {
    b"ANSWERED": ("\\Answered", True),
    b"DELETED": ("\\Deleted", True),
    b"DRAFT": ("\\Draft", True),
    b"FLAGGED": ("\\Flagged", True),
    b"SEEN": ("\\Seen", True),
    b"RECENT": ("\\Recent", True),
    b"UNANSWERED": ("\\Answered", False),
    b"UNDELETED": ("\\Deleted", False),
    b"UNDRAFT": ("\\Draft", False),
    b"UNFLAGGED": ("\\Flagged", False),
    b"UNSEEN": ("\\Seen", False),
    b"OLD": ("\\Recent", False),
}
_HEADER_KEYS: Final = {b"BCC", b"CC", b"FROM", b"SUBJECT", b"TO"}
_DATE_KEYS: Final[dict[bytes, tuple[Literal["before", "on", "since"], bool]]] = {
    b"BEFORE": ("before", False),
    b"ON": ("on", False),
    b"SINCE": ("since", False),
    b"SENTBEFORE": ("before", True),
    b"SENTON": ("on", True),
    b"SENTSINCE": ("since", True),
}


def _search_string(r: Reader) -> str:
    """A SEARCH string decoded per CHARSET (RFC 9051 §6.4.4): UTF-8 when none is named
    (always accepted); US-ASCII refuses 8-bit octets; any other charset is decoded as
    Latin-1, byte for byte, and refused by the server (``NO [BADCHARSET]``)."""
    raw = r.astring()
    charset = r.charset
    if charset is None or charset == "UTF-8":
        return raw.decode("utf-8", "replace")
    if charset == "US-ASCII":
        if not raw.isascii():
            raise ParseError("Non-ASCII search string with CHARSET US-ASCII")
        return raw.decode("ascii")
    return raw.decode("latin-1")


def _search_key(r: Reader) -> c.SearchKey:
    """One search-key (RFC 9051 §9); recursion is bounded by the reader's depth limit."""
    r.depth += 1
    if r.depth > r.max_depth:
        raise ParseError("Too deeply nested")
    try:
        return _search_key_inner(r)
    finally:
        r.depth -= 1


def _search_key_inner(r: Reader) -> c.SearchKey:
    ch = r.peek()
    if ch == LPAREN:
        r.pos += 1
        keys = [_search_key(r)]
        while r.peek() == SP:
            r.pos += 1
            keys.append(_search_key(r))
        if r.peek() != RPAREN:
            raise ParseError("Expected )")
        r.pos += 1
        return c.SearchAnd(tuple(keys))
    if ch != -1 and (DIGIT[ch] or ch in b"*$"):
        return c.SearchSequence(r.sequence_set())
    word = r.run(ATOM_CHAR).upper()
    if not word:
        raise ParseError("Expected search key")
    if word == b"ALL":
        return c.SearchAll()
    flag = _FLAG_KEYS.get(word)
    if flag is not None:
        return c.SearchFlag(flag[0], flag[1])
    if word == b"NEW":
        return c.SearchAnd((c.SearchFlag("\\Recent"), c.SearchFlag("\\Seen", False)))
    if word in (b"KEYWORD", b"UNKEYWORD"):
        r.sp()
        return c.SearchFlag(r.atom("keyword"), word == b"KEYWORD")
    if word in _HEADER_KEYS:
        r.sp()
        return c.SearchHeader(word.decode().lower(), _search_string(r))
    if word == b"HEADER":
        r.sp()
        name = r.text(r.astring(), "Header name")
        r.sp()
        return c.SearchHeader(name.lower(), _search_string(r))
    if word == b"BODY":
        r.sp()
        return c.SearchText(_search_string(r), body_only=True)
    if word == b"TEXT":
        r.sp()
        return c.SearchText(_search_string(r))
    date_key = _DATE_KEYS.get(word)
    if date_key is not None:
        r.sp()
        return c.SearchDate(date_key[0], dates.date(r), date_key[1])
    if word in (b"LARGER", b"SMALLER"):
        r.sp()
        return c.SearchSize("larger" if word == b"LARGER" else "smaller", r.number(MAX_MODSEQ))
    if word == b"UID":
        r.sp()
        return c.SearchSequence(r.sequence_set(), uid=True)
    if word == b"NOT":
        r.sp()
        return c.SearchNot(_search_key(r))
    if word == b"OR":
        r.sp()
        left = _search_key(r)
        r.sp()
        return c.SearchOr(left, _search_key(r))
    if word == b"MODSEQ":
        # RFC 7162 §3.1.5: MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        r.sp()
        entry_name = entry_type = None
        if r.peek() == DQUOTE:
            entry_name = r.text(r.quoted(), "Entry name")
            r.sp()
            entry_type = r.upper_atom("entry type").lower()
            if entry_type not in ("priv", "shared", "all"):
                raise ParseError("Invalid entry type")
            r.sp()
        return c.SearchModseq(r.number(MAX_MODSEQ), entry_name, entry_type)
    if word in (b"OLDER", b"YOUNGER"):
        # RFC 5032
        r.sp()
        return c.SearchWithin(
            "older" if word == b"OLDER" else "younger", r.number(MAX_NZ, nonzero=True)
        )
    raise ParseError("Unknown search key")


def _parse_search(r: Reader, tag: str, uid: bool) -> c.Search:
    # RFC 9051 §6.4.4, RFC 4731 §3 (RETURN), RFC 5182 (SAVE)
    r.sp()
    return_options: tuple[str, ...] | None = None
    charset: str | None = None
    if r.accept(b"RETURN"):
        r.sp()
        return_options = r.atom_list()
        for opt in return_options:
            if opt not in c.ESEARCH_OPTIONS:
                raise ParseError("Unknown search return option")
        r.sp()
    if r.accept(b"CHARSET"):
        r.sp()
        charset = r.text(r.astring(), "Charset").upper()
        r.charset = charset
        r.sp()
    keys = [_search_key(r)]
    while r.maybe_sp():
        keys.append(_search_key(r))
    r.end()
    return c.Search(tag, uid, charset, c.SearchAnd(tuple(keys)), return_options)


# ----- FETCH -----

_MACROS: Final = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


def _section_part(r: Reader) -> tuple[int, ...]:
    """nz-number *("." nz-number), stopping before a "." that does not lead to digits."""
    parts = [r.number(MAX_NZ, nonzero=True)]
    while r.peek() == ord(".") and r.pos + 1 < len(r.data) and DIGIT[r.data[r.pos + 1]]:
        r.pos += 1
        parts.append(r.number(MAX_NZ, nonzero=True))
    return tuple(parts)


def _partial(r: Reader) -> c.Partial | None:
    # RFC 9051 §9: partial = "<" number64 "." nz-number64 ">"
    if r.peek() != ord("<"):
        return None
    r.pos += 1
    origin = r.number(MAX_MODSEQ)
    r.expect(b".")
    length = r.number(MAX_MODSEQ, nonzero=True)
    r.expect(b">")
    return c.Partial(origin, length)


def _body_section(r: Reader, *, peek: bool, binary: bool) -> c.FetchBody:
    r.expect(b"[")
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    if r.peek() != ord("]"):
        if DIGIT[r.peek()]:
            part = _section_part(r)
            if r.peek() == ord("."):
                if binary:
                    raise ParseError("Invalid BINARY section")
                r.pos += 1
                kind, fields = _section_text(r, allow_mime=True)
        elif binary:
            raise ParseError("Invalid BINARY section")
        else:
            kind, fields = _section_text(r, allow_mime=False)
    r.expect(b"]")
    return c.FetchBody(part, kind, fields, _partial(r), peek, binary)


def _section_text(r: Reader, *, allow_mime: bool) -> tuple[c.SectionKind, tuple[str, ...]]:
    word = r.run(FETCH_NAME_CHAR).upper()
    if word == b"HEADER":
        return "HEADER", ()
    if word == b"TEXT":
        return "TEXT", ()
    if word == b"MIME" and allow_mime:
        return "MIME", ()
    if word in (b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
        r.sp()
        r.open_paren()
        names = [r.text(r.astring(), "Header name")]
        while r.peek() == SP:
            r.pos += 1
            names.append(r.text(r.astring(), "Header name"))
        r.close_paren()
        kind: c.SectionKind = "HEADER.FIELDS" if word == b"HEADER.FIELDS" else "HEADER.FIELDS.NOT"
        return kind, tuple(names)
    raise ParseError("Invalid section")


def _fetch_att(r: Reader, out: list[c.FetchItem], *, allow_macro: bool) -> None:
    name = r.run(FETCH_NAME_CHAR).upper().decode("ascii")
    if not name:
        raise ParseError("Expected fetch attribute")
    nxt = r.peek()
    if name in ("BODY", "BODY.PEEK") and nxt == ord("["):
        out.append(_body_section(r, peek=name == "BODY.PEEK", binary=False))
    elif name in ("BINARY", "BINARY.PEEK") and nxt == ord("["):
        out.append(_body_section(r, peek=name == "BINARY.PEEK", binary=True))
    elif name == "BINARY.SIZE" and nxt == ord("["):
        r.pos += 1
        part: tuple[int, ...] = ()
        if r.peek() != ord("]"):
            part = _section_part(r)
        r.expect(b"]")
        out.append(c.FetchBinarySize(part))
    elif name in c.SIMPLE_FETCH_ATTRIBUTES:
        out.append(c.FetchAttribute(name))
    elif allow_macro and name in _MACROS:
        out.extend(c.FetchAttribute(n) for n in _MACROS[name])
    else:
        raise ParseError("Invalid fetch attribute")


def _parse_fetch(r: Reader, tag: str, uid: bool) -> c.Fetch:
    # RFC 9051 §6.4.5, RFC 7162 §3.1.4 (CHANGEDSINCE) / §3.2.6 (VANISHED), RFC 3516
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    items: list[c.FetchItem] = []
    if r.peek() == LPAREN:
        # RFC 9051 §9 allows ALL/FAST/FULL only bare, but clients (imapclient) send
        # "(FAST)": accept a macro as the first item of a list.
        r.open_paren()
        _fetch_att(r, items, allow_macro=True)
        while r.peek() == SP:
            r.pos += 1
            _fetch_att(r, items, allow_macro=False)
        r.close_paren()
    else:
        _fetch_att(r, items, allow_macro=True)
    changed_since: int | None = None
    vanished = False
    if r.maybe_sp():
        r.open_paren()
        first = True
        while first or r.peek() == SP:
            if not first:
                r.pos += 1
            first = False
            mod = r.upper_atom("fetch modifier")
            if mod == "CHANGEDSINCE":
                r.sp()
                changed_since = r.number(MAX_MODSEQ, nonzero=True)
            elif mod == "VANISHED":
                vanished = True
            else:
                raise ParseError("Unknown fetch modifier")
        r.close_paren()
    r.end()
    if vanished and (not uid or changed_since is None):
        # RFC 7162 §3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE
        raise ParseError("VANISHED requires UID FETCH with CHANGEDSINCE")
    return c.Fetch(tag, uid, seqset, tuple(items), changed_since, vanished)


def _parse_store(r: Reader, tag: str, uid: bool) -> c.Store:
    # RFC 9051 §6.4.6, RFC 7162 §3.1.3 (UNCHANGEDSINCE)
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    unchanged_since: int | None = None
    if r.peek() == LPAREN:
        r.open_paren()
        r.expect(b"UNCHANGEDSINCE")
        r.sp()
        unchanged_since = r.number(MAX_MODSEQ)
        r.close_paren()
        r.sp()
    mode: c.StoreMode = "replace"
    if r.peek() == ord("+"):
        mode = "add"
        r.pos += 1
    elif r.peek() == ord("-"):
        mode = "remove"
        r.pos += 1
    word = r.run(FETCH_NAME_CHAR).upper()
    if word == b"FLAGS":
        silent = False
    elif word == b"FLAGS.SILENT":
        silent = True
    else:
        raise ParseError("Expected FLAGS")
    r.sp()
    if r.peek() == LPAREN:
        flags = r.flag_list()
    else:
        fl = [r.flag()]
        while r.maybe_sp():
            fl.append(r.flag())
        flags = tuple(fl)
    r.end()
    return c.Store(tag, uid, seqset, mode, silent, flags, unchanged_since)


def _parse_copy_move(r: Reader, tag: str, uid: bool, cls: type[c.Copy] | type[c.Move]) -> c.Command:
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return cls(tag, uid, seqset, mailbox)


def _parse_uid_expunge(r: Reader, tag: str) -> c.UidExpunge:
    r.sp()
    seqset = r.sequence_set()
    r.end()
    return c.UidExpunge(tag, seqset)


def _parse_id(r: Reader, tag: str) -> c.Id:
    # RFC 2971 §3.3: "ID" SP id_params_list; id_params_list = "(" #(string SP nstring) ")" / nil
    r.sp()
    if r.accept(b"NIL"):
        r.end()
        return c.Id(tag, None)
    r.open_paren()
    params: list[tuple[str, str | None]] = []
    while r.peek() != RPAREN:
        if params:
            r.sp()
        key = r.text(r.string(), "ID field")
        r.sp()
        raw = r.nstring()
        params.append((key, None if raw is None else r.text(raw, "ID value")))
    r.close_paren()
    r.end()
    return c.Id(tag, tuple(params))


_PARSERS: Final[dict[str, Callable[[Reader, str], c.Command]]] = {
    "CAPABILITY": _no_args(c.Capability),
    "NOOP": _no_args(c.Noop),
    "LOGOUT": _no_args(c.Logout),
    "STARTTLS": _no_args(c.StartTls),
    "NAMESPACE": _no_args(c.Namespace),
    "IDLE": _no_args(c.Idle),
    "CHECK": _no_args(c.Check),
    "CLOSE": _no_args(c.Close),
    "UNSELECT": _no_args(c.Unselect),
    "EXPUNGE": _no_args(c.Expunge),
    "ID": _parse_id,
    "AUTHENTICATE": _parse_authenticate,
    "LOGIN": _parse_login,
    "ENABLE": _parse_enable,
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
    "APPEND": _parse_append,
    "SEARCH": lambda r, t: _parse_search(r, t, False),
    "FETCH": lambda r, t: _parse_fetch(r, t, False),
    "STORE": lambda r, t: _parse_store(r, t, False),
    "COPY": lambda r, t: _parse_copy_move(r, t, False, c.Copy),
    "MOVE": lambda r, t: _parse_copy_move(r, t, False, c.Move),
    "UID SEARCH": lambda r, t: _parse_search(r, t, True),
    "UID FETCH": lambda r, t: _parse_fetch(r, t, True),
    "UID STORE": lambda r, t: _parse_store(r, t, True),
    "UID COPY": lambda r, t: _parse_copy_move(r, t, True, c.Copy),
    "UID MOVE": lambda r, t: _parse_copy_move(r, t, True, c.Move),
    "UID EXPUNGE": _parse_uid_expunge,
}

KNOWN_COMMANDS: Final = frozenset(_PARSERS)
"""Every command name `parse_command` accepts ("UID FETCH" style for UID commands)."""


def parse_command(data: bytes, *, utf8: bool = False, max_depth: int = 32) -> c.Command:
    """Parse one framed command (no final CRLF; literals inline with CRLF after ``}``).

    `utf8` allows UTF-8 in quoted strings (RFC 6855 UTF8=ACCEPT, IMAP4rev2 RFC 9051 §9).
    Raises ParseError; the caller knows the tag from `parse_tag`.
    """
    tag = parse_tag(data)
    if tag is None:
        raise ParseError("Invalid tag")
    r = Reader(data, utf8=utf8, max_depth=max_depth)
    r.pos = len(tag) + 1
    word = r.run(ATOM_CHAR).upper()
    name = word.decode("ascii")
    if word == b"UID":
        r.sp()
        name = "UID " + r.run(ATOM_CHAR).upper().decode("ascii")
    parser = _PARSERS.get(name)
    if parser is None:
        raise ParseError("Unknown command")
    return parser(r, tag)


__all__ = [
    "ASTRING_CHAR",
    "KNOWN_COMMANDS",
    "MONTHS",
    "ParseError",
    "command_name",
    "decode_base64",
    "parse_command",
    "parse_sequence_set",
    "parse_tag",
]
