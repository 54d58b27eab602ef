"""Every byte the POP3 server sends is built here (RFC 1939 §3, RFC 2449 §8).

Status lines are ``+OK`` / ``-ERR``, optionally with a response code in brackets
(RFC 2449 §8: ``-ERR [IN-USE] ...``; RFC 3206 adds ``[AUTH]``, ``[SYS/TEMP]``,
``[SYS/PERM]``). Multi-line replies end with "." CRLF and are dot-stuffed
(`pillarbox.proto.dotstuff`); a message streamed in chunks goes through `ChunkStuffer`, and
TOP through `TopFilter`, so a large message never needs to be held whole.

Must not do: I/O, policy, or echo client-supplied text (a status line is at most 512
octets, RFC 2449 §4, and must not reflect what an attacker sent).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from pillarbox.proto.dotstuff import stuff

# RFC 2449 §4: a response line is at most 512 octets including CRLF.
MAX_RESPONSE_LINE = 512


def _status(prefix: bytes, text: str, code: str | None) -> bytes:
    parts = [prefix]
    if code:
        parts.append(b"[" + code.encode("ascii") + b"]")
    if text:
        parts.append(text.encode("utf-8"))
    line = b" ".join(parts)
    line = line.replace(b"\r", b" ").replace(b"\n", b" ")
    if len(line) > MAX_RESPONSE_LINE - 2:
        line = line[: MAX_RESPONSE_LINE - 2]
    return line + b"\r\n"


def ok(text: str = "", code: str | None = None) -> bytes:
    """``+OK [code] text`` CRLF."""
    return _status(b"+OK", text, code)


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [code] text`` CRLF; `code` is e.g. "IN-USE", "AUTH", "SYS/TEMP"."""
    return _status(b"-ERR", text, code)


def multiline(first: bytes, lines: Iterable[str | bytes]) -> bytes:
    """A status line (from `ok`) followed by dot-stuffed lines and the terminating "."."""
    body = b"".join((x.encode("utf-8") if isinstance(x, str) else x) + b"\r\n" for x in lines)
    return first + stuff(body)


def capabilities(lines: Iterable[str]) -> bytes:
    """CAPA answer (RFC 2449 §5)."""
    return multiline(ok("Capability list follows"), lines)


def auth_challenge(challenge: bytes) -> bytes:
    """``+ base64`` CRLF (RFC 5034 §4); an empty challenge is "+ " CRLF."""
    return b"+ " + base64.b64encode(challenge) + b"\r\n"


class ChunkStuffer:
    """Dot-stuffs a message arriving in chunks of any size (RFC 1939 §3).

    Theory: a "." needs doubling when it starts a line, i.e. follows CRLF (or starts the
    message). Keeping the last two source bytes of the previous chunk in front of the next
    one is enough: every CRLF "." triple then lies wholly inside `tail + chunk`, with its
    dot inside `chunk`, so one `replace` per chunk is exact. `end()` adds the CRLF a
    message without a final line ending needs, then the terminating "." CRLF.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b"\r\n"  # the start of the message counts as a line start

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        data = self._tail + chunk
        out = data.replace(b"\r\n.", b"\r\n..")[len(self._tail) :]
        self._tail = data[-2:]
        return out

    def end(self) -> bytes:
        if self._tail.endswith(b"\r\n"):
            return b".\r\n"
        return b"\r\n.\r\n"


class TopFilter:
    """Passes the header, the blank line, and the first `lines` body lines (RFC 1939 §7).

    Feed the message in chunks; `feed` returns what to send, and `done` turns true once
    nothing more is needed (the caller stops reading the file); call `end()` at the end of
    the message for any byte held back. Lines end with LF (CRLF included); a message with
    no empty line is all header and passes whole.

    Theory: the only decision that needs look-ahead is whether a header line is empty. A
    CR that starts a header line at the very end of a chunk is held back until the next
    byte shows whether it is the empty line's CRLF.
    """

    __slots__ = ("_body_lines_left", "_held", "_in_header", "_line_start", "done")

    def __init__(self, lines: int) -> None:
        self._in_header = True
        self._body_lines_left = lines
        self._line_start = True
        self._held = b""
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done or not chunk:
            return b""
        if self._held:
            chunk = self._held + chunk
            self._held = b""
        out = bytearray()
        i = 0
        n = len(chunk)
        while i < n and not self.done:
            if self._in_header and self._line_start:
                if chunk[i] == 0x0A or chunk[i : i + 2] == b"\r\n":
                    end = chunk.index(b"\n", i) + 1
                    out += chunk[i:end]
                    i = end
                    self._in_header = False
                    if self._body_lines_left == 0:
                        self.done = True
                    continue
                if chunk[i] == 0x0D and i + 1 == n:
                    self._held = b"\r"
                    break
            j = chunk.find(b"\n", i)
            if j < 0:
                out += chunk[i:]
                self._line_start = False
                break
            out += chunk[i : j + 1]
            i = j + 1
            self._line_start = True
            if not self._in_header:
                self._body_lines_left -= 1
                if self._body_lines_left == 0:
                    self.done = True
        return bytes(out)

    def end(self) -> bytes:
        """Bytes held back at the end of the message (a trailing lone CR)."""
        held, self._held = self._held, b""
        return b"" if self.done else held
