"""The IMAP command grammar: one framed command (bytes) in, one `commands` dataclass out.

Theory of operation: `ServerConnection` frames a command (its lines and the literals they
announce, joined back with canonical CRLFs, the final CRLF removed) and calls
`parse_command`. A `_Reader` walks the bytes with an index; each command has one parse
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

MAX_NZ: Final = 0xFFFFFFFF  # RFC 9051 §9 nz-number
MAX_MODSEQ: Final = 0x7FFFFFFFFFFFFFFF  # RFC 7162 §7 mod-sequence-value (63 bits)


class ParseError(Exception):
    """The command is malformed; `str(self)` is the client-safe BAD text."""


def _table(pred: Callable[[int], bool]) -> bytes:
    return bytes(1 if pred(b) else 0 for b in range(256))


# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials
#              / resp-specials
_ATOM_SPECIALS: Final = frozenset(b'(){ %*"\\]')
ATOM_CHAR: Final = _table(lambda b: 0x20 < b < 0x7F and b not in _ATOM_SPECIALS)
ASTRING_CHAR: Final = _table(lambda b: bool(ATOM_CHAR[b]) or b == ord("]"))
LIST_CHAR: Final = _table(lambda b: bool(ASTRING_CHAR[b]) or b in b"%*")
TAG_CHAR: Final = _table(lambda b: bool(ASTRING_CHAR[b]) and b != ord("+"))
_SEQ_CHAR: Final = _table(lambda b: b in b"0123456789:,*$")
_FETCH_NAME_CHAR: Final = _table(lambda b: (chr(b).isalnum() and b < 0x80) or b in b".-")
_DIGIT: Final = _table(lambda b: 0x30 <= b <= 0x39)
# Generic extension values: anything but SP, parens, quote, brace and CTL.
_GENERIC_CHAR: Final = _table(lambda b: 0x20 < b < 0x7F and b not in b'(){"')

MONTHS: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_MONTH_NUM: Final = {m.encode(): i + 1 for i, m in enumerate(MONTHS)}

SP: Final = 0x20
LPAREN: Final = ord("(")
RPAREN: Final = ord(")")
DQUOTE: Final = ord('"')
BACKSLASH: Final = ord("\\")
LBRACE: Final = ord("{")
TILDE: Final = ord("~")


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


class _Reader:
    """Cursor over one framed command with the IMAP token readers."""

    __slots__ = ("charset", "data", "depth", "max_depth", "pos", "utf8")

    def __init__(self, data: bytes, *, utf8: bool, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.utf8 = utf8
        self.max_depth = max_depth
        self.depth = 0
        self.charset: str | None = None  # SEARCH CHARSET, once read

    # --- low level ---

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ParseError("Unexpected extra arguments")

    def sp(self) -> None:
        if self.peek() != SP:
            raise ParseError("Missing argument" if self.at_end() else "Expected space")
        self.pos += 1

    def maybe_sp(self) -> bool:
        """Consume one SP if present and followed by something (an argument)."""
        if self.peek() == SP:
            self.pos += 1
            if self.at_end():
                raise ParseError("Trailing space")
            return True
        return False

    def expect(self, token: bytes) -> None:
        if self.data[self.pos : self.pos + len(token)].upper() != token:
            raise ParseError("Expected " + token.decode())
        self.pos += len(token)

    def accept(self, token: bytes) -> bool:
        """Consume `token` (case-insensitive) if it is next and ends a word."""
        end = self.pos + len(token)
        if self.data[self.pos : end].upper() == token and (
            end >= len(self.data) or not ATOM_CHAR[self.data[end]]
        ):
            self.pos = end
            return True
        return False

    def open_paren(self) -> None:
        if self.peek() != LPAREN:
            raise ParseError("Expected (")
        self.pos += 1
        self.depth += 1
        if self.depth > self.max_depth:
            raise ParseError("Too deeply nested")

    def close_paren(self) -> None:
        if self.peek() != RPAREN:
            raise ParseError("Expected )")
        self.pos += 1
        self.depth -= 1

    def _run(self, table: bytes) -> bytes:
        start = self.pos
        data = self.data
        n = len(data)
        p = start
        while p < n and table[data[p]]:
            p += 1
        self.pos = p
        return data[start:p]

    # --- tokens ---

    def atom(self, what: str = "atom") -> str:
        raw = self._run(ATOM_CHAR)
        if not raw:
            raise ParseError("Expected " + what)
        return raw.decode("ascii")

    def upper_atom(self, what: str = "atom") -> str:
        return self.atom(what).upper()

    def number(self, maximum: int = MAX_NZ, *, nonzero: bool = False) -> int:
        raw = self._run(_DIGIT)
        if not raw:
            raise ParseError("Expected number")
        if len(raw) > 20:
            raise ParseError("Number out of range")
        value = int(raw)
        if value > maximum or (nonzero and value == 0):
            raise ParseError("Number out of range")
        return value

    def quoted(self) -> bytes:
        """RFC 9051 §9 quoted: only \\\\ and \\" escapes; no CR, LF, NUL; 8-bit in UTF-8 mode."""
        data = self.data
        p = self.pos + 1  # after the opening quote
        n = len(data)
        out = bytearray()
        eight_bit = False
        while True:
            q = p
            while q < n and data[q] not in b'"\\\r\n\x00':
                q += 1
            out += data[p:q]
            if q >= n:
                raise ParseError("Unterminated quoted string")
            ch = data[q]
            if ch == DQUOTE:
                p = q + 1
                break
            if ch == BACKSLASH:
                if q + 1 < n and data[q + 1] in b'"\\':
                    out.append(data[q + 1])
                    p = q + 2
                    continue
                raise ParseError("Invalid escape in quoted string")
            raise ParseError("Invalid character in quoted string")
        value = bytes(out)
        for b in value:
            if b >= 0x80:
                eight_bit = True
                break
        if eight_bit:
            if not self.utf8:
                raise ParseError("8-bit characters in quoted string")
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise ParseError("Invalid UTF-8 in quoted string") from None
        self.pos = p
        return value

    def literal(self, *, allow_binary: bool = False) -> tuple[bytes, bool]:
        """``{n}``/``{n+}`` CRLF octets, or literal8 ``~{n}`` when `allow_binary`.

        Returns (data, is_literal8). Plain literals may not contain NUL (RFC 9051 §4.3).
        """
        binary = False
        if self.peek() == TILDE:
            if not allow_binary:
                raise ParseError("Binary literal not allowed here")
            binary = True
            self.pos += 1
        if self.peek() != LBRACE:
            raise ParseError("Expected literal")
        self.pos += 1
        size = self.number(1 << 64)
        if self.peek() == ord("+"):
            self.pos += 1
        if self.data[self.pos : self.pos + 3] != b"}\r\n":
            raise ParseError("Malformed literal")
        start = self.pos + 3
        end = start + size
        if end > len(self.data):
            raise ParseError("Truncated literal")
        self.pos = end
        value = self.data[start:end]
        if not binary and b"\x00" in value:
            raise ParseError("NUL in literal")
        return value, binary

    def string(self) -> bytes:
        ch = self.peek()
        if ch == DQUOTE:
            return self.quoted()
        if ch == LBRACE:
            return self.literal()[0]
        raise ParseError("Expected string")

    def astring(self) -> bytes:
        ch = self.peek()
        if ch in (DQUOTE, LBRACE):
            return self.string()
        raw = self._run(ASTRING_CHAR)
        if not raw:
            raise ParseError("Missing argument" if self.at_end() else "Expected string")
        return raw

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def text(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(what + " is not valid UTF-8") from None

    def mailbox(self) -> str:
        return self.text(self.astring(), "Mailbox name")

    def list_mailbox(self) -> str:
        ch = self.peek()
        if ch in (DQUOTE, LBRACE):
            return self.text(self.string(), "Mailbox pattern")
        raw = self._run(LIST_CHAR)
        if not raw:
            raise ParseError("Expected mailbox pattern")
        return raw.decode("ascii")

    def sequence_set(self) -> c.SequenceSet:
        raw = self._run(_SEQ_CHAR)
        if not raw:
            raise ParseError("Expected sequence set")
        return parse_sequence_set(raw)

    def flag(self) -> str:
        if self.peek() == BACKSLASH:
            self.pos += 1
            return "\\" + self.atom("flag")
        return self.atom("flag")

    def flag_list(self) -> tuple[str, ...]:
        self.open_paren()
        flags: list[str] = []
        if self.peek() != RPAREN:
            flags.append(self.flag())
            while self.peek() == SP:
                self.pos += 1
                flags.append(self.flag())
        self.close_paren()
        return tuple(flags)

    def atom_list(self) -> tuple[str, ...]:
        """``"(" [atom *(SP atom)] ")"`` upper-cased."""
        self.open_paren()
        items: list[str] = []
        if self.peek() != RPAREN:
            items.append(self.upper_atom())
            while self.peek() == SP:
                self.pos += 1
                items.append(self.upper_atom())
        self.close_paren()
        return tuple(items)

    def date(self) -> datetime.date:
        """RFC 9051 §9 date = date-text / DQUOTE date-text DQUOTE."""
        quoted = self.peek() == DQUOTE
        if quoted:
            self.pos += 1
        day = self.number(99)
        self.expect(b"-")
        month = _MONTH_NUM.get(self.data[self.pos : self.pos + 3].upper())
        if month is None:
            raise ParseError("Invalid date")
        self.pos += 3
        self.expect(b"-")
        year_raw = self._run(_DIGIT)
        if len(year_raw) != 4:
            raise ParseError("Invalid date")
        if quoted:
            self.expect(b'"')
        try:
            return datetime.date(int(year_raw), month, day)
        except ValueError:
            raise ParseError("Invalid date") from None

    def date_time(self) -> datetime.datetime:
        """RFC 9051 §9 date-time: ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` (day may be " d")."""
        self.expect(b'"')
        if self.peek() == SP:
            self.pos += 1
        day_raw = self._run(_DIGIT)
        if not 1 <= len(day_raw) <= 2:
            raise ParseError("Invalid date-time")
        self.expect(b"-")
        month = _MONTH_NUM.get(self.data[self.pos : self.pos + 3].upper())
        if month is None:
            raise ParseError("Invalid date-time")
        self.pos += 3
        self.expect(b"-")
        rest = self.data[self.pos : self.pos + 20]
        # "yyyy hh:mm:ss +zzzz""
        if (
            len(rest) != 20
            or rest[4:5] != b" "
            or rest[7:8] != b":"
            or rest[10:11] != b":"
            or rest[13:14] != b" "
            or rest[14:15] not in (b"+", b"-")
            or rest[19:20] != b'"'
            or not all(
                _DIGIT[b] for b in rest[0:4] + rest[5:7] + rest[8:10] + rest[11:13] + rest[15:19]
            )
        ):
            raise ParseError("Invalid date-time")
        self.pos += 20
        zone_minutes = int(rest[15:17]) * 60 + int(rest[17:19])
        if zone_minutes >= 24 * 60:
            raise ParseError("Invalid date-time")
        sign = 1 if rest[14:15] == b"+" else -1
        try:
            tz = datetime.timezone(datetime.timedelta(minutes=sign * zone_minutes))
            return datetime.datetime(
                int(rest[0:4]),
                month,
                int(day_raw),
                int(rest[5:7]),
                int(rest[8:10]),
                int(rest[11:13]),
                tzinfo=tz,
            )
        except ValueError:
            raise ParseError("Invalid date-time") from None

    def generic_value(self) -> c.ParamValue:
        """A tagged-ext-val (RFC 4466 §2.1), parsed generically: string or nested list."""
        ch = self.peek()
        if ch == LPAREN:
            self.open_paren()
            items: list[c.ParamValue] = []
            if self.peek() != RPAREN:
                items.append(self.generic_value())
                while self.peek() == SP:
                    self.pos += 1
                    items.append(self.generic_value())
            self.close_paren()
            return tuple(items)
        if ch in (DQUOTE, LBRACE):
            return self.text(self.string(), "Parameter")
        raw = self._run(_GENERIC_CHAR)
        if not raw:
            raise ParseError("Expected parameter value")
        return raw.decode("ascii")

    def parameters(self) -> tuple[tuple[str, c.ParamValue | None], ...]:
        """``"(" param *(SP param) ")"`` with param = name [SP value] (RFC 4466 §2.1).

        A value is present when the word after the name starts with "(", a digit, "*" or
        "$" (tagged-ext-val); names start with a letter, so this is unambiguous.
        """
        self.open_paren()
        params: list[tuple[str, c.ParamValue | None]] = []
        while True:
            name = self.upper_atom("parameter name")
            value: c.ParamValue | None = None
            if self.peek() == SP and self.pos + 1 < len(self.data):
                nxt = self.data[self.pos + 1]
                if nxt == LPAREN or nxt in b"0123456789*$":
                    self.pos += 1
                    value = self.generic_value()
            params.append((name, value))
            if self.peek() == SP:
                self.pos += 1
                continue
            break
        self.close_paren()
        return tuple(params)


def parse_sequence_set(raw: bytes) -> c.SequenceSet:
    """RFC 9051 §9 sequence-set, or "$" (RFC 5182)."""
    if raw == b"$":
        return c.SequenceSet((), saved=True)
    ranges: list[c.SeqRange] = []
    for item in raw.split(b","):
        parts = item.split(b":")
        if len(parts) > 2:
            raise ParseError("Invalid sequence set")
        nums: list[int | None] = []
        for p in parts:
            if p == b"*":
                nums.append(None)
            elif p and p.isdigit() and len(p) <= 10:
                v = int(p)
                if not 1 <= v <= MAX_NZ:
                    raise ParseError("Invalid sequence set")
                nums.append(v)
            else:
                raise ParseError("Invalid sequence set")
        ranges.append(c.SeqRange(nums[0], nums[-1]))
    return c.SequenceSet(tuple(ranges))


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


def _no_args(cls: type[c.Command]) -> Callable[[_Reader, str], c.Command]:
    def parse(r: _Reader, tag: str) -> c.Command:
        r.end()
        return cls(tag)

    return parse


def _parse_authenticate(r: _Reader, tag: str) -> c.Authenticate:
    # RFC 9051 §6.2.2, RFC 4959 (SASL-IR)
    r.sp()
    mechanism = r.upper_atom("mechanism")
    initial: bytes | None = None
    if r.maybe_sp():
        raw = r._run(ATOM_CHAR)
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


def _parse_login(r: _Reader, tag: str) -> c.Login:
    r.sp()
    user = r.text(r.astring(), "User name")
    r.sp()
    password = r.text(r.astring(), "Password")
    r.end()
    return c.Login(tag, user, password)


def _parse_enable(r: _Reader, tag: str) -> c.Enable:
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


def _parse_select(r: _Reader, tag: str, cls: type[c.Select] | type[c.Examine]) -> c.Command:
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


def _parse_create(r: _Reader, tag: str) -> c.Create:
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
) -> Callable[[_Reader, str], c.Command]:
    def parse(r: _Reader, tag: str) -> c.Command:
        r.sp()
        mailbox = r.mailbox()
        r.end()
        return cls(tag, mailbox)

    return parse


def _parse_rename(r: _Reader, tag: str) -> c.Rename:
    r.sp()
    old = r.mailbox()
    r.sp()
    new = r.mailbox()
    r.end()
    return c.Rename(tag, old, new)


def _parse_list(r: _Reader, tag: str) -> c.List:
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


def _parse_lsub(r: _Reader, tag: str) -> c.Lsub:
    r.sp()
    reference = r.mailbox()
    r.sp()
    pattern = r.list_mailbox()
    r.end()
    return c.Lsub(tag, reference, pattern)


def _status_items(r: _Reader) -> tuple[str, ...]:
    items = r.atom_list()
    if not items:
        raise ParseError("Missing status items")
    for item in items:
        if item not in c.STATUS_ITEMS:
            raise ParseError("Unknown status item")
    return items


def _parse_status(r: _Reader, tag: str) -> c.Status:
    # RFC 9051 §6.3.11
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    items = _status_items(r)
    r.end()
    return c.Status(tag, mailbox, items)


def _parse_append(r: _Reader, tag: str) -> c.Append:
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
            date = r.date_time()
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


def _search_string(r: _Reader) -> str:
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


def _search_key(r: _Reader) -> c.SearchKey:
    """One search-key (RFC 9051 §9); recursion is bounded by the reader's depth limit."""
    r.depth += 1
    if r.depth > r.max_depth:
        raise ParseError("Too deeply nested")
    try:
        return _search_key_inner(r)
    finally:
        r.depth -= 1


def _search_key_inner(r: _Reader) -> c.SearchKey:
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
    if ch != -1 and (_DIGIT[ch] or ch in b"*$"):
        return c.SearchSequence(r.sequence_set())
    word = r._run(ATOM_CHAR).upper()
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
        return c.SearchDate(date_key[0], r.date(), date_key[1])
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


def _parse_search(r: _Reader, tag: str, uid: bool) -> c.Search:
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


def _section_part(r: _Reader) -> tuple[int, ...]:
    """nz-number *("." nz-number), stopping before a "." that does not lead to digits."""
    parts = [r.number(MAX_NZ, nonzero=True)]
    while r.peek() == ord(".") and r.pos + 1 < len(r.data) and _DIGIT[r.data[r.pos + 1]]:
        r.pos += 1
        parts.append(r.number(MAX_NZ, nonzero=True))
    return tuple(parts)


def _partial(r: _Reader) -> c.Partial | None:
    # RFC 9051 §9: partial = "<" number64 "." nz-number64 ">"
    if r.peek() != ord("<"):
        return None
    r.pos += 1
    origin = r.number(MAX_MODSEQ)
    r.expect(b".")
    length = r.number(MAX_MODSEQ, nonzero=True)
    r.expect(b">")
    return c.Partial(origin, length)


def _body_section(r: _Reader, *, peek: bool, binary: bool) -> c.FetchBody:
    r.expect(b"[")
    part: tuple[int, ...] = ()
    kind: c.SectionKind = ""
    fields: tuple[str, ...] = ()
    if r.peek() != ord("]"):
        if _DIGIT[r.peek()]:
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


def _section_text(r: _Reader, *, allow_mime: bool) -> tuple[c.SectionKind, tuple[str, ...]]:
    word = r._run(_FETCH_NAME_CHAR).upper()
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


def _fetch_att(r: _Reader, out: list[c.FetchItem], *, allow_macro: bool) -> None:
    name = r._run(_FETCH_NAME_CHAR).upper().decode("ascii")
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


def _parse_fetch(r: _Reader, tag: str, uid: bool) -> c.Fetch:
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


def _parse_store(r: _Reader, tag: str, uid: bool) -> c.Store:
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
    word = r._run(_FETCH_NAME_CHAR).upper()
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


def _parse_copy_move(
    r: _Reader, tag: str, uid: bool, cls: type[c.Copy] | type[c.Move]
) -> c.Command:
    r.sp()
    seqset = r.sequence_set()
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return cls(tag, uid, seqset, mailbox)


def _parse_uid_expunge(r: _Reader, tag: str) -> c.UidExpunge:
    r.sp()
    seqset = r.sequence_set()
    r.end()
    return c.UidExpunge(tag, seqset)


def _parse_id(r: _Reader, tag: str) -> c.Id:
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


_PARSERS: Final[dict[str, Callable[[_Reader, str], c.Command]]] = {
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
    r = _Reader(data, utf8=utf8, max_depth=max_depth)
    r.pos = len(tag) + 1
    word = r._run(ATOM_CHAR).upper()
    name = word.decode("ascii")
    if word == b"UID":
        r.sp()
        name = "UID " + r._run(ATOM_CHAR).upper().decode("ascii")
    parser = _PARSERS.get(name)
    if parser is None:
        raise ParseError("Unknown command")
    return parser(r, tag)
