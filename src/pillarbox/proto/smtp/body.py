"""Checks applied to message content as it streams: size, header size, line length, and
bare CR / bare LF.

Owns the per-message accounting the SMTP core needs to refuse a message at its end with
the right reply, without ever holding the message: every check keeps O(1) state across
chunk boundaries and uses C-speed `bytes` methods per chunk, so a 50 MB body costs a few
calls per 64 KB chunk. It sees content after dot-unstuffing (DATA) or as sent (BDAT).

Why bare line endings are refused (RFC 5321 §2.3.8, SMTP smuggling, CVE-2023-51764): a
message with "\\n.\\n" or "\\r.\\r" that we store and later relay could end early at a
less careful next hop. `dotstuff.Unstuffer` already never ends DATA on them; this
refuses the message outright, for DATA and BDAT alike. With ``bare_newline =
"normalize"`` a bare LF never gets here: `dotstuff.Unstuffer` (DATA) and `LfNormalizer`
(BDAT) have already made it CRLF, so only a bare CR is refused.
"""

from __future__ import annotations

import re

from pillarbox.proto.smtp import responses as r

_BARE_LF = re.compile(rb"(?<!\r)\n")


class LfNormalizer:
    """BDAT content with ``bare_newline = "normalize"``: every bare LF becomes CRLF.

    BDAT has no end marker (RFC 3030 §2: the octet count frames it), so a bare LF there
    cannot smuggle anything; it is normalised only so that a stored message has one kind
    of line end whichever command carried it, as with DATA. Chunks cost one C-speed count
    when they hold no bare LF; a CRLF cut between two chunks stays one CRLF.
    """

    __slots__ = ("_cr",)

    def __init__(self) -> None:
        self._cr = False  # the previous chunk ended with CR

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        skip = 1 if self._cr and chunk[0] == 0x0A else 0  # the LF of a cut CRLF
        self._cr = chunk[-1] == 0x0D
        if chunk.count(b"\n", skip) == chunk.count(b"\r\n"):
            return chunk
        return chunk[:skip] + _BARE_LF.sub(b"\r\n", chunk[skip:])


class BodyScanner:
    """Feed content chunks; `error` is the first violation's reply (or None)."""

    __slots__ = (
        "_header_done",
        "_last",
        "_prefix",
        "_since_lf",
        "error",
        "max_header",
        "max_line",
        "max_size",
        "size",
    )

    def __init__(self, *, max_size: int, max_header: int, max_line: int) -> None:
        self.max_size = max_size
        self.max_header = max_header
        self.max_line = max_line
        self.size = 0
        self.error: bytes | None = None
        self._header_done = False
        self._last = b""  # up to 3 bytes of the previous chunk's end
        self._since_lf = 0
        self._prefix = b""  # the first two bytes: CRLF there means an empty header

    @property
    def over_size(self) -> bool:
        return self.size > self.max_size

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        start = self.size
        self.size += len(chunk)
        if self.size > self.max_size:
            # Too big wins over any violation seen earlier (RFC 5321 §4.5.3.1.10: 552
            # tells the client not to retry as is), whatever the chunking.
            self.error = r.MESSAGE_TOO_BIG
            return
        if self.error is not None:
            return
        joined = self._last + chunk
        offset = len(self._last)
        # Bare LF: an LF not preceded by CR. Bare CR: a CR not followed by LF; a CR at the
        # very end is decided by the next chunk (or by `finish`).
        lf = joined.count(b"\n", offset)
        crlf = joined.count(b"\r\n", max(0, offset - 1))
        if lf != crlf:
            self.error = r.BARE_LINE_ENDING
            return
        settled_cr = (
            chunk.count(b"\r")
            + (1 if self._last.endswith(b"\r") else 0)
            - (1 if chunk.endswith(b"\r") else 0)
        )
        if settled_cr != crlf:
            self.error = r.BARE_LINE_ENDING
            return
        self._check_lines(chunk)
        if self.error is None and not self._header_done:
            self._check_header(joined, offset, start)
        self._last = joined[-3:]

    def _check_lines(self, chunk: bytes) -> None:
        first = chunk.find(b"\n")
        if first < 0:
            self._since_lf += len(chunk)
        else:
            if self._since_lf + first + 1 > self.max_line:
                self.error = r.BODY_LINE_TOO_LONG
                return
            if len(chunk) > self.max_line:
                # The complete lines after the first: split and len run in C, where a
                # find() loop cost one Python iteration per line (~350 per 25 KB chunk).
                lines = chunk.split(b"\n")
                if len(lines) > 2 and max(map(len, lines[1:-1])) + 1 > self.max_line:
                    self.error = r.BODY_LINE_TOO_LONG
                    return
            self._since_lf = len(chunk) - chunk.rfind(b"\n") - 1
        if self._since_lf > self.max_line:
            self.error = r.BODY_LINE_TOO_LONG

    def _check_header(self, joined: bytes, offset: int, start: int) -> None:
        # The header ends at the first empty line: CRLF CRLF, or CRLF at offset 0.
        if len(self._prefix) < 2:
            self._prefix += joined[offset : offset + 2 - len(self._prefix)]
            if self._prefix == b"\r\n":
                self._header_done = True
                return
        end = joined.find(b"\r\n\r\n", max(0, offset - 3))
        if end >= 0:
            header_size = start - offset + end + 4
            if header_size > self.max_header:
                self.error = r.HEADER_TOO_BIG
            self._header_done = True
        elif self.size > self.max_header:
            self.error = r.HEADER_TOO_BIG

    def finish(self) -> bytes | None:
        """The violation to report at the end of the message, if any."""
        if self.error is None and self._last.endswith(b"\r"):
            self.error = r.BARE_LINE_ENDING
        return self.error
