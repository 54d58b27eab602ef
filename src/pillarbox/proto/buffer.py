"""Receive buffer shared by the protocol cores.

Theory of operation: bytes are appended with `feed`; `read_line` returns one complete
line including its terminator (CRLF, or a bare LF that the caller may refuse), or None
when more data is needed; `read_exact(n)` returns exactly n bytes or None. A line longer
than `max_line` raises `LineTooLong` as soon as the buffer proves it, without waiting
for the terminator, so a peer cannot make us hold an unbounded line in memory.
"""

from __future__ import annotations


class LineTooLong(Exception):
    """The peer sent a line over the limit; `discarded` tells whether it was consumed."""


class ReceiveBuffer:
    __slots__ = ("_buf", "_scan_from", "_skipping", "max_line")

    def __init__(self, max_line: int) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._skipping = False
        self.max_line = max_line

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        """Drop everything buffered (RFC 3207 §4.2: discard pre-TLS pipelined bytes)."""
        self._buf.clear()
        self._scan_from = 0
        self._skipping = False

    def read_line(self) -> bytes | None:
        """One line with its LF terminator, or None if incomplete.

        After `LineTooLong`, the rest of the long line is skipped silently and the
        next call returns the line after it.
        """
        while True:
            idx = self._buf.find(b"\n", self._scan_from)
            if idx < 0:
                if self._skipping:
                    self._buf.clear()
                    self._scan_from = 0
                    return None
                if len(self._buf) > self.max_line:
                    self._skipping = True
                    self._buf.clear()
                    self._scan_from = 0
                    raise LineTooLong()
                self._scan_from = len(self._buf)
                return None
            line = bytes(self._buf[: idx + 1])
            del self._buf[: idx + 1]
            self._scan_from = 0
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > self.max_line:
                raise LineTooLong()
            return line

    def read_exact(self, n: int) -> bytes | None:
        """Exactly n bytes, or None until that many are buffered."""
        if len(self._buf) < n:
            return None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._scan_from = 0
        return data

    def read_upto(self, n: int) -> bytes:
        """Up to n buffered bytes (possibly b""), for streaming a body without holding it."""
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._scan_from = 0
        return data
