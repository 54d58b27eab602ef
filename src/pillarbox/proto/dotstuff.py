"""Dot-stuffing for SMTP DATA (RFC 5321 §4.5.2) and POP3 multi-line replies (RFC 1939 §3).

Only CRLF "." CRLF ends data. A bare LF or bare CR never takes part in an end marker,
so "\\n.\\n", "\\r\\n.\\n", "\\n.\\r\\n" and "\\r.\\r" inside a message are ordinary content
(SMTP smuggling, CVE-2023-51764 class).

Two ways to treat a bare LF, chosen by the caller (`[smtp] bare_newline`):

- strict (``normalize_lf=False``): a bare LF is not a line end; `Unstuffer` reports that
  it saw one (`bare_line_ending`) so that the SMTP core can refuse the message.
- normalising (``normalize_lf=True``, Postfix 3.9's default ``smtpd_forbid_bare_newline =
  normalize``): a bare LF ends a line and comes out as CRLF. The line after it is a line
  like any other for transparency, so its leading dot is removed (RFC 5321 §4.5.2) — but
  it can never be the end marker, because the marker's first CRLF must be a real one:
  "LF . CRLF" and "CRLF . LF" both decode to an empty line and the data goes on. Decoding
  the dot before turning LF into CRLF is what keeps "LF . LF" from ever becoming
  "CRLF . CRLF". A bare CR is still only reported (the core refuses it in both modes).
"""

from __future__ import annotations


def stuff(data: bytes) -> bytes:
    """Encode a message (CRLF lines) for a multi-line reply, with the final ".\\r\\n"."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class Unstuffer:
    """Incremental decoder of a dot-stuffed stream.

    `feed(chunk)` returns the decoded bytes that are certainly body; `done` becomes true
    once CRLF.CRLF (or "." CRLF at the very start) has been seen, and `trailing` holds
    any bytes received after the terminator (pipelined commands). With `normalize_lf`,
    every bare LF in the output is CRLF (see the module docstring).
    """

    __slots__ = (
        "_after_bare_lf",
        "_at_line_start",
        "_pending",
        "bare_line_ending",
        "done",
        "normalize_lf",
        "trailing",
    )

    def __init__(self, *, normalize_lf: bool = False) -> None:
        self.normalize_lf = normalize_lf
        self._pending = b""
        self._at_line_start = True
        self._after_bare_lf = False  # the current line start follows a bare LF
        self.done = False
        self.trailing = b""
        self.bare_line_ending = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            self.trailing += chunk
            return b""
        data = self._pending + chunk
        self._pending = b""
        fast = self._feed_whole(data)
        return fast if fast is not None else self._feed_by_line(data)

    def _feed_whole(self, data: bytes) -> bytes | None:
        """Whole-buffer decoding when there is no bare CR, and no bare LF unless they are
        normalised (nearly all mail): a few C-speed passes instead of a step per line.
        None: go by line."""
        tail = b""
        if data.endswith(b"\r"):
            data, tail = data[:-1], b"\r"  # maybe a CRLF cut in two: decided next time
        crlf = data.count(b"\r\n")
        if data.count(b"\r") != crlf:
            return None
        bare_lf = data.count(b"\n") != crlf
        if bare_lf and not self.normalize_lf:
            return None
        # A line start before the data becomes a line end in front, so that one pattern
        # finds the end marker and one replace the stuffing dots (RFC 5321 §4.5.2). After
        # a bare LF that line end is a bare LF too: "\n.\r\n" is no end marker.
        prefix = b"\n" if self._after_bare_lf else b"\r\n" if self._at_line_start else b""
        buf = prefix + data
        end = buf.find(b"\r\n.\r\n")
        if end >= 0:
            self.done = True
            self.trailing = buf[end + 5 :] + tail
            buf = buf[: end + 2]
        elif buf.endswith(b"\r\n."):
            # A dot opening the last line: stuffing, or the end marker to come.
            self._pending = b"." + tail
            buf = buf[:-1]
        else:
            self._pending = tail
        if len(buf) > len(prefix):
            self._at_line_start = buf.endswith(b"\n")
            self._after_bare_lf = self._at_line_start and not buf.endswith(b"\r\n")
        # With bare LFs "\n." covers both line ends; "\r\n." alone is faster to find.
        dot = b"\n." if bare_lf or prefix == b"\n" else b"\r\n."
        out = buf.replace(dot, dot[:-1])[len(prefix) :]
        if bare_lf and out.count(b"\n") != out.count(b"\r\n"):  # not all after the end
            self.bare_line_ending = True
            # No bare CR is left, so every CR is half of a CRLF: two C passes make
            # every line end CRLF.
            out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        return out

    def _feed_by_line(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        n = len(data)
        while i < n:
            if self._at_line_start and data[i] == 0x2E:  # "."
                rest = data[i + 1 : i + 3]
                if not self._after_bare_lf:
                    if len(rest) < 2 and i + 1 + len(rest) == n and b"\r\n".startswith(rest):
                        self._pending = data[i:]
                        return bytes(out)
                    if rest == b"\r\n":
                        self.done = True
                        self.trailing = data[i + 3 :]
                        return bytes(out)
                i += 1  # drop the stuffing dot
                self._at_line_start = self._after_bare_lf = False
                continue
            j = data.find(b"\n", i)
            k = data.find(b"\r", i)
            if j < 0 and k < 0:
                out += data[i:]
                self._at_line_start = self._after_bare_lf = False
                break
            if k >= 0 and (j < 0 or k < j):
                # a CR: part of CRLF, a bare CR, or cut at the chunk end
                if k + 1 == n:
                    out += data[i:k]
                    self._pending = b"\r"
                    if k > i:
                        self._at_line_start = self._after_bare_lf = False
                    return bytes(out)
                if data[k + 1] == 0x0A:
                    out += data[i : k + 2]
                    i = k + 2
                    self._at_line_start = True
                    self._after_bare_lf = False
                    continue
                self.bare_line_ending = True
                out += data[i : k + 1]
                i = k + 1
                self._at_line_start = self._after_bare_lf = False
                continue
            # a bare LF
            self.bare_line_ending = True
            if self.normalize_lf:
                out += data[i:j]
                out += b"\r\n"
                self._at_line_start = self._after_bare_lf = True
            else:
                out += data[i : j + 1]
                self._at_line_start = self._after_bare_lf = False
            i = j + 1
        return bytes(out)
