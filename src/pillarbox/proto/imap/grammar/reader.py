"""The IMAP tokenizer: a cursor over one framed command and the readers of each token.

`Reader` knows the lexical grammar every command shares (RFC 9051 §9: atom, astring,
quoted, literal and literal8 per RFC 3516, nstring, sequence-set with "$" per RFC 5182,
flag lists, the generic extension parameters of RFC 4466 §2.1; dates are in
`grammar.dates`) and nothing about which command is being read: the family modules next
to it call these readers in the order their command's ABNF says.

Literals are re-read inline: the connection already framed the command and checked their
sizes, so ``{n}\\r\\n`` is followed by exactly n bytes here. Nesting of parenthesised lists is
counted in `depth` and refused beyond `max_depth`, so no input can exhaust the Python
stack. Errors raise `ParseError` with a short text that never echoes client bytes.

Must not: do I/O, know about connection states, mailboxes or credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap.grammar.chars import (
    ASTRING_CHAR,
    ATOM_CHAR,
    BACKSLASH,
    DIGIT,
    DQUOTE,
    GENERIC_CHAR,
    LBRACE,
    LIST_CHAR,
    LPAREN,
    MAX_NZ,
    RPAREN,
    SEQ_CHAR,
    SP,
    TILDE,
)


class ParseError(Exception):
    """The command is malformed; `str(self)` is the client-safe BAD text."""


class Reader:
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

    def run(self, table: bytes) -> bytes:
        """Consume the longest run of bytes in `table` (one of `chars`), maybe empty.

        Every token reader is built on this loop; parse functions use it too, for words the
        grammar defines by their characters (section names, ``FLAGS.SILENT``).
        """
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
        raw = self.run(ATOM_CHAR)
        if not raw:
            raise ParseError("Expected " + what)
        return raw.decode("ascii")

    def upper_atom(self, what: str = "atom") -> str:
        return self.atom(what).upper()

    def number(self, maximum: int = MAX_NZ, *, nonzero: bool = False) -> int:
        raw = self.run(DIGIT)
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

    def literal(self, *, allow_binary: bool = False, allow_nul: bool = False) -> tuple[bytes, bool]:
        """``{n}``/``{n+}`` CRLF octets, or literal8 ``~{n}`` when `allow_binary`.

        Returns (data, is_literal8). Plain literals may not contain NUL (RFC 9051 §4.3),
        unless `allow_nul`: then the caller refuses it with NO (CATENATE TEXT, RFC 4469).
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
        if not binary and not allow_nul and b"\x00" in value:
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
        raw = self.run(ASTRING_CHAR)
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
        raw = self.run(LIST_CHAR)
        if not raw:
            raise ParseError("Expected mailbox pattern")
        return raw.decode("ascii")

    def sequence_set(self) -> c.SequenceSet:
        raw = self.run(SEQ_CHAR)
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
        raw = self.run(GENERIC_CHAR)
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


CommandParser: TypeAlias = Callable[[Reader, str], c.Command]
"""What each family's `PARSERS` table maps a command name to.

It is called with the reader just past the command word (``UID FETCH``: past ``FETCH``)
and the tag, reads the rest of the command up to its end, and returns the event.
"""


def no_arguments(cls: type[c.Command]) -> CommandParser:
    """The parser of a command with nothing after its name (CAPABILITY, NOOP, CHECK, ...)."""

    def parse(r: Reader, tag: str) -> c.Command:
        r.end()
        return cls(tag)

    return parse
