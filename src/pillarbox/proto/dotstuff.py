"""Dot-stuffing for SMTP DATA (RFC 5321 §4.5.2) and POP3 multi-line replies (RFC 1939 §3).

Only CRLF "." CRLF ends data. A bare LF or bare CR never takes part in an end marker,
so "\\n.\\n" and "\\r.\\r" inside a message are ordinary content (SMTP smuggling,
CVE-2023-51764 class); `Unstuffer` reports whether such bare line endings were seen so
the SMTP front-end can refuse the message instead.
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
    any bytes received after the terminator (pipelined commands).
    """

    __slots__ = ("_at_line_start", "_pending", "bare_line_ending", "done", "trailing")

    def __init__(self) -> None:
        self._pending = b""
        self._at_line_start = True
        self.done = False
        self.trailing = b""
        self.bare_line_ending = False

    def feed(self, chunk: bytes) -> bytes:
        if self.done:
            self.trailing += chunk
            return b""
        data = self._pending + chunk
        self._pending = b""
        fast = self._feed_crlf_only(data)
        return fast if fast is not None else self._feed_by_line(data)

    def _feed_crlf_only(self, data: bytes) -> bytes | None:
        """Whole-buffer decoding when every line ends in CRLF (nearly all mail): a few
        C-speed passes instead of a step per line. None: bare CR or LF, go by line."""
        tail = b""
        if data.endswith(b"\r"):
            data, tail = data[:-1], b"\r"  # maybe a CRLF cut in two: decided next time
        crlf = data.count(b"\r\n")
        if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
            return None
        # A line start before the data becomes a CRLF in front, so that one pattern
        # finds the end marker and the stuffing dots everywhere (RFC 5321 §4.5.2).
        prefix = b"\r\n" if self._at_line_start else b""
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
            self._at_line_start = buf.endswith(b"\r\n")
        return buf.replace(b"\r\n.", b"\r\n")[len(prefix) :]

    def _feed_by_line(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        n = len(data)
        while i < n:
            if self._at_line_start and data[i] == 0x2E:  # "."
                rest = data[i + 1 : i + 3]
                if len(rest) < 2 and i + 1 + len(rest) == n and b"\r\n".startswith(rest):
                    self._pending = data[i:]
                    return bytes(out)
                if rest == b"\r\n":
                    self.done = True
                    self.trailing = data[i + 3 :]
                    return bytes(out)
                i += 1  # drop the stuffing dot
                self._at_line_start = False
                continue
            j = data.find(b"\n", i)
            k = data.find(b"\r", i)
            if j < 0 and k < 0:
                out += data[i:]
                self._at_line_start = False
                break
            if k >= 0 and (j < 0 or k < j):
                # a CR: part of CRLF, a bare CR, or cut at the chunk end
                if k + 1 == n:
                    out += data[i:k]
                    self._pending = b"\r"
                    self._at_line_start = False
                    return bytes(out)
                if data[k + 1] == 0x0A:
                    out += data[i : k + 2]
                    i = k + 2
                    self._at_line_start = True
                    continue
                self.bare_line_ending = True
                out += data[i : k + 1]
                i = k + 1
                self._at_line_start = False
                continue
            # a bare LF
            self.bare_line_ending = True
            out += data[i : j + 1]
            i = j + 1
            self._at_line_start = False
        return bytes(out)
