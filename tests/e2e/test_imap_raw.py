"""A tiny raw IMAP client for tests that must see every byte the server sends (a helper
module: it holds no tests of its own)."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl

_LITERAL = re.compile(rb"~?\{(\d+)\}\r\n$")


class RawImap:
    """Line-level IMAP over a real socket: send a command, collect lines up to its tag."""

    def __init__(self, port: int, timeout: float = 30, rcvbuf: int | None = None) -> None:
        """`rcvbuf` sets SO_RCVBUF before connecting: a client that takes little at a time."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self) -> bytes:
        """One response line, with any literals it announces folded in."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            part, _, self.buf = self.buf.partition(b"\r\n")
            out += part + b"\r\n"
            m = _LITERAL.search(out)
            if not m:
                return out[:-2]
            size = int(m.group(1))
            while len(self.buf) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            out += self.buf[:size]
            self.buf = self.buf[size:]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, text: bytes | str) -> list[bytes]:
        """Send `tag text`, return all lines through the tagged one (last)."""
        self.n += 1
        tag = b"t%d" % self.n
        raw = text.encode() if isinstance(text, str) else text
        self.send(tag + b" " + raw + b"\r\n")
        return self.until(tag)

    def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def login(self, user: str = "alice@example.test", password: str = "") -> list[bytes]:
        return self.cmd(f'LOGIN "{user}" "{password}"')

    def starttls(self) -> None:
        lines = self.cmd("STARTTLS")
        assert lines[-1].split()[1] == b"OK", lines
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def status(lines: list[bytes]) -> bytes:
    """The tagged line's status and text: b"OK [...] text"."""
    return lines[-1].split(b" ", 1)[1]
