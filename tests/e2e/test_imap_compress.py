"""COMPRESS=DEFLATE (RFC 4978) over real sockets, with a zlib client.

Pins: after ``COMPRESS DEFLATE`` and its uncompressed OK, every byte both ways is raw
DEFLATE (wbits -15) and each response is flushed (the client reads it without sending
more); it works inside TLS (implicit TLS port) and during IDLE; a second COMPRESS is
``NO [COMPRESSIONACTIVE]``; an unknown mechanism is BAD; compressed bytes the client sent
right behind the command are not lost; garbage instead of DEFLATE ends the connection.
"""

from __future__ import annotations

import socket
import ssl
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

BODY = b"All work and no play makes Jack a dull boy.\r\n" * 2000  # ~90 KB, compresses well
MSG = b"From: a@example.test\r\nSubject: dull\r\n\r\n" + BODY


class DeflateSocket:
    """The client side of RFC 4978 over a socket: what `RawImap` reads and writes."""

    def __init__(self, sock: Any, pending: bytes = b"") -> None:
        self.sock = sock
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inp = zlib.decompressobj(-15)
        self.raw_received = 0
        self.pending = self.inp.decompress(pending)

    def deflate(self, data: bytes) -> bytes:
        return self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(self.deflate(data))

    def recv(self, n: int) -> bytes:
        while not self.pending:
            raw = self.sock.recv(n)
            if not raw:
                return b""
            self.raw_received += len(raw)
            self.pending = self.inp.decompress(raw)
        out, self.pending = self.pending, b""
        return out

    def settimeout(self, t: float) -> None:
        self.sock.settimeout(t)

    def close(self) -> None:
        self.sock.close()


def compress(c: RawImap) -> DeflateSocket:
    """Send COMPRESS DEFLATE, check the OK arrived uncompressed, switch the client over."""
    lines = c.cmd("COMPRESS DEFLATE")
    assert status(lines).startswith(b"OK"), lines
    wrapped = DeflateSocket(c.sock, c.buf)  # anything after the OK is compressed
    c.buf = b""
    c.sock = wrapped  # type: ignore[assignment]
    return wrapped


@pytest.fixture
def connect(server: RunningServer) -> Iterator[Callable[..., RawImap]]:
    opened: list[RawImap] = []

    def make(listener: str = "imap") -> RawImap:
        c = RawImap(server.port(listener)) if listener == "imap" else _tls(server.port(listener))
        opened.append(c)
        assert status(c.login("alice@example.test", PASSWORD)).startswith(b"OK")
        return c

    yield make
    for c in opened:
        c.close()


def _tls(port: int) -> RawImap:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    class TlsImap(RawImap):
        def __init__(self) -> None:
            self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
            self.buf = b""
            self.n = 0
            self.greeting = self.line()

    return TlsImap()


def append(c: RawImap, data: bytes = MSG) -> list[bytes]:
    return c.cmd(f"APPEND INBOX {{{len(data)}+}}\r\n".encode() + data)


def test_capability_and_commands_compressed(connect: Callable[..., RawImap]) -> None:
    """COMPRESS=DEFLATE is advertised; after COMPRESS, commands and responses are DEFLATE
    and a large FETCH goes over the wire much smaller than the message."""
    c = connect()
    assert b"COMPRESS=DEFLATE" in c.cmd("CAPABILITY")[0]
    wrapped = compress(c)
    assert status(append(c)).startswith(b"OK")
    assert status(c.cmd("SELECT INBOX")).startswith(b"OK")
    before = wrapped.raw_received
    lines = c.cmd("FETCH 1 BODY.PEEK[TEXT]")
    assert status(lines).startswith(b"OK")
    assert lines[0].startswith(b"* 1 FETCH (BODY[TEXT] {%d}" % len(BODY))
    assert lines[0].endswith(BODY + b")")
    assert wrapped.raw_received - before < len(BODY) // 10


def test_second_compress_is_refused(connect: Callable[..., RawImap]) -> None:
    """RFC 4978 §3: COMPRESS while DEFLATE is on is NO [COMPRESSIONACTIVE]; the stream
    stays compressed and usable."""
    c = connect()
    compress(c)
    assert status(c.cmd("COMPRESS DEFLATE")).startswith(b"NO [COMPRESSIONACTIVE]")
    assert status(c.cmd("NOOP")).startswith(b"OK")


def test_unknown_mechanism_is_bad(connect: Callable[..., RawImap]) -> None:
    """Only DEFLATE exists (RFC 4978 §3: BAD for an unknown argument); nothing changes."""
    c = connect()
    assert status(c.cmd("COMPRESS LZ4")).startswith(b"BAD")
    assert status(c.cmd("NOOP")).startswith(b"OK")


def test_not_before_login(server: RunningServer) -> None:
    """COMPRESS is a command-auth (RFC 4978 §5): refused before authentication."""
    c = RawImap(server.port("imap"))
    try:
        assert status(c.cmd("COMPRESS DEFLATE")).startswith(b"BAD")
    finally:
        c.close()


def test_compressed_bytes_right_behind_the_command(connect: Callable[..., RawImap]) -> None:
    """Compressed commands sent in the same packet as COMPRESS are read as compressed
    (the core hands its buffered bytes to the inflater), not as plaintext."""
    c = connect()
    out = zlib.compressobj(6, zlib.DEFLATED, -15)
    c.send(b"c1 COMPRESS DEFLATE\r\n" + out.compress(b"c2 NOOP\r\n") + out.flush(zlib.Z_SYNC_FLUSH))
    assert c.line().startswith(b"c1 OK")
    wrapped = DeflateSocket(c.sock, c.buf)
    wrapped.out = out
    c.buf = b""
    c.sock = wrapped  # type: ignore[assignment]
    assert c.until(b"c2")[-1].startswith(b"c2 OK")


def test_through_tls(connect: Callable[..., RawImap]) -> None:
    """On the implicit-TLS port, DEFLATE runs inside TLS."""
    c = connect("imaps")
    assert isinstance(c.sock, ssl.SSLSocket)
    compress(c)
    assert status(append(c)).startswith(b"OK")
    lines = c.cmd("STATUS INBOX (MESSAGES)")
    assert (
        lines[0] == b'* STATUS "INBOX" (MESSAGES 1)' or lines[0] == b"* STATUS INBOX (MESSAGES 1)"
    )


def test_idle_pushes_through_compression(connect: Callable[..., RawImap]) -> None:
    """An IDLE update is flushed through the compressor at once: the client sees EXISTS
    without sending anything more."""
    a = connect()
    b = connect()
    compress(a)
    a.cmd("SELECT INBOX")
    a.send(b"i1 IDLE\r\n")
    assert a.line().startswith(b"+ ")
    assert status(append(b)).startswith(b"OK")
    a.sock.settimeout(20)
    assert a.line() == b"* 1 EXISTS"
    a.send(b"DONE\r\n")
    assert a.until(b"i1")[-1].startswith(b"i1 OK")


def test_garbage_instead_of_deflate_closes(connect: Callable[..., RawImap]) -> None:
    """Bytes that are not DEFLATE end the connection rather than being read as commands."""
    c = connect()
    assert status(c.cmd("COMPRESS DEFLATE")).startswith(b"OK")
    c.send(b"\xff\xff\xff\xff t2 NOOP\r\n")
    c.sock.settimeout(20)
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(10):
            if not c.sock.recv(65536):
                raise ConnectionError("closed")
