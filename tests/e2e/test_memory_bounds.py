"""Memory follows what clients read, not what they ask for (issue 16 item 1).

A real `pillarbox serve` child process holds one 50 MB message in 21 mailboxes (one SMTP
delivery). Twenty clients ask for it and never read: over IMAP (twenty connections of
one account, `FETCH 1 BODY.PEEK[]`, then `BINARY.PEEK[1]`) and over POP3 (`RETR 1`, one
connection each of twenty accounts, since a POP3 session locks its maildrop). The
server's resident memory is read from /proc: its peak while they wait must stay under
`PEAK_LIMIT` (before, each such connection cost about three copies of the message), and
once they have gone the server must be back near where it started, with no file
descriptor left open (the blobs streamed from are closed). Clients that do read get the
exact bytes (SHA-256) over plain TCP, implicit TLS and COMPRESS=DEFLATE, for the whole
message, TEXT, a partial range, BINARY[] and BINARY[1] (the base64 body decoded, whole
and partial).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import itertools
import os
import random
import re
import smtplib
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from pillarbox.backends import open_store
from pillarbox.config import ListenConfig, load
from tests.e2e.conftest import PASSWORD, password_hash
from tests.e2e.serve import ServeProcess

MIB = 1024 * 1024
CLIENTS = 20
PEAK_LIMIT = 300 * MIB  # the bound for the whole server with 20 such clients
RETURN_SLACK = 100 * MIB  # above the baseline once every client has gone
TIMEOUT = 120.0
DOMAIN = "mem.test"
IMAP_USER = f"reader@{DOMAIN}"
POP_USERS = [f"pop{n:02d}@{DOMAIN}" for n in range(CLIENTS)]
LISTENERS = ("smtp", "imap", "imaps", "pop3")

# One worker runs the whole module (pytest -n with --dist loadgroup): the module's server,
# with its 50 MB message delivered to 21 accounts, is then started once, not per worker.
pytestmark = pytest.mark.xdist_group("memory_bounds")


PAYLOAD = random.Random(16).randbytes(37 * MIB)  # random: COMPRESS cannot make it small


def big_message() -> bytes:
    """About 50 MB: headers, then PAYLOAD in base64, in 76-column lines."""
    body = base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n")
    head = (
        f"From: sender@remote.test\r\nTo: {IMAP_USER}\r\nSubject: big\r\n"
        "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + body


MESSAGE = big_message()
# Delivery adds trace headers at the top: what is stored is those, then MESSAGE.
TEXT = MESSAGE[MESSAGE.index(b"\r\n\r\n") + 4 :]


def status_of(pid: int, field: str) -> int:
    """A size field of /proc/PID/status (VmRSS, VmHWM), in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None, text
    return int(match.group(1)) * 1024


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (proc(5), clear_refs "5")."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll a condition of another process (no event to wait on across processes)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.05)


@dataclasses.dataclass
class Server:
    serve: ServeProcess
    pid: int

    def port(self, name: str) -> int:
        return self.serve.ports[name]


def write_config(tmp: Path) -> Path:
    names = [f.name for f in dataclasses.fields(ListenConfig)]
    listen = "\n".join(
        f'{name} = "127.0.0.1:0"' if name in LISTENERS else f'{name} = ""' for name in names
    )
    config = tmp / "pillarbox.toml"
    config.write_text(
        "[server]\n"
        f'hostname = "mail.{DOMAIN}"\n'
        f'data_dir = "{tmp / "data"}"\n'
        'log_level = "warning"\n'
        f"[listen]\n{listen}\n"
        "[dns]\n"
        'nameservers = ["127.0.0.1:9"]\n'
        "timeout = 1.0\n"
        "[limits]\n"
        "max_connections_per_ip = 200\n"
        "max_connections_per_account = 50\n"
    )
    return config


async def provision(config: Path) -> None:
    """The domain and the 21 accounts, written to the store before the server starts."""
    store = open_store(load(config))
    await store.open()
    try:
        await store.add_domain(DOMAIN)
        hashed = password_hash()
        for address in (IMAP_USER, *POP_USERS):
            await store.add_account(address, hashed)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("memory")
    config = write_config(tmp)
    asyncio.run(provision(config))
    serve = ServeProcess(config, LISTENERS, tmp / "serve.log")
    try:
        with smtplib.SMTP("127.0.0.1", serve.ports["smtp"], timeout=TIMEOUT) as smtp:
            assert smtp.sendmail("sender@remote.test", [IMAP_USER, *POP_USERS], MESSAGE) == {}
        yield Server(serve, serve.proc.pid)
    finally:
        serve.stop()


# --- clients -------------------------------------------------------------------------


class Wire(Protocol):
    def sendall(self, data: bytes, /) -> None: ...
    def recv(self, n: int, /) -> bytes: ...
    def close(self) -> None: ...


class Deflated:
    """RFC 4978 from the client's side: raw DEFLATE both ways over a socket."""

    def __init__(self, sock: Wire, pending: bytes) -> None:
        self.sock = sock
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inp = zlib.decompressobj(-15)
        self.pending = self.inp.decompress(pending)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def recv(self, n: int) -> bytes:
        while not self.pending:
            raw = self.sock.recv(n)
            if not raw:
                return b""
            self.pending = self.inp.decompress(raw)
        out, self.pending = self.pending, b""
        return out

    def close(self) -> None:
        self.sock.close()


class Client:
    """Lines and literals over a socket, reading a large literal piecewise into a hash."""

    def __init__(self, sock: Wire) -> None:
        self.sock = sock
        self.buf = b""

    def fill(self) -> None:
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self.fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def hash_bytes(self, size: int) -> tuple[str, int]:
        """SHA-256 and count of the next `size` bytes, read as they come."""
        digest = hashlib.sha256()
        left = size
        while left:
            if not self.buf:
                self.fill()
            take = self.buf[:left]
            self.buf = self.buf[len(take) :]
            digest.update(take)
            left -= len(take)
        return digest.hexdigest(), size

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


def connect(port: int, *, tls: bool = False) -> Wire:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    if not tls:
        return sock
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the server's generated self-signed certificate
    return ctx.wrap_socket(sock)


def imap_login(port: int, *, tls: bool = False) -> Client:
    client = Client(connect(port, tls=tls))
    assert client.line().startswith(b"* OK")
    client.send(f'a LOGIN "{IMAP_USER}" "{PASSWORD}"\r\n'.encode())
    assert imap_done(client, b"a").startswith(b"a OK")
    client.send(b"b SELECT INBOX\r\n")
    assert imap_done(client, b"b").startswith(b"b OK")
    return client


def compress(client: Client) -> None:
    """COMPRESS DEFLATE (RFC 4978): what follows its OK is DEFLATE both ways."""
    client.send(b"z COMPRESS DEFLATE\r\n")
    assert imap_done(client, b"z").startswith(b"z OK")
    client.sock = Deflated(client.sock, client.buf)
    client.buf = b""


def imap_done(client: Client, tag: bytes) -> bytes:
    while True:
        line = client.line()
        if line.startswith(tag + b" "):
            return line


LITERAL = re.compile(rb"(~?)\{(\d+)\}$")


def imap_fetch(client: Client, tag: bytes, item: bytes) -> list[tuple[bytes, str, int]]:
    """`FETCH 1 (item)`: each literal of the answer as (text before it, sha256, size)."""
    client.send(tag + b" FETCH 1 (" + item + b")\r\n")
    got: list[tuple[bytes, str, int]] = []
    while True:
        line = client.line()
        if line.startswith(tag + b" "):
            assert line.startswith(tag + b" OK"), line
            return got
        while (match := LITERAL.search(line)) is not None:
            got.append((line, *client.hash_bytes(int(match.group(2)))))
            line = client.line()


def sha(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)


# --- memory --------------------------------------------------------------------------


def hold_unread(server: Server, login: Callable[[], Client], command: bytes, first: bytes) -> None:
    """Log CLIENTS connections in with `login`, then have each send `command` (asking
    for the message) and read only until it sees `first`; the server's peak RSS from
    the first command on must stay under PEAK_LIMIT, and once the clients have gone,
    memory and descriptors must come back. The peak is reset after the logins: a
    password check (argon2id) takes tens of MiB of its own for a moment."""
    pid = server.pid
    baseline_fds = open_fds(pid)
    baseline = status_of(pid, "VmRSS")
    held: list[Client] = []
    try:
        for _ in range(CLIENTS):
            held.append(login())
        logged_in = status_of(pid, "VmRSS")
        reset_peak(pid)
        for client in held:
            client.send(command)
            assert not client.buf  # nothing of the answer was read
        for client in held:  # each answer has begun: the server has its part of it ready
            seen = b""
            while first not in seen:
                chunk = client.sock.recv(4096)
                assert chunk, "connection closed before the answer began"
                seen = seen[-64:] + chunk
        peak = status_of(pid, "VmHWM")
        print(
            f"RSS {baseline / MIB:.0f} MiB; {CLIENTS} logged in {logged_in / MIB:.0f} MiB;"
            f" peak with {CLIENTS} answers unread {peak / MIB:.0f} MiB"
        )
        assert peak < PEAK_LIMIT, f"peak RSS {peak / MIB:.0f} MiB"
    finally:
        for client in held:
            client.close()
    wait_for(lambda: open_fds(pid) <= baseline_fds, "connections and blobs closed")
    wait_for(
        lambda: status_of(pid, "VmRSS") <= baseline + RETURN_SLACK,
        f"RSS back within {RETURN_SLACK // MIB} MiB of {baseline // MIB} MiB",
    )
    print(f"RSS after they closed {status_of(pid, 'VmRSS') / MIB:.0f} MiB")


def test_imap_fetch_unread_is_bounded(server: Server) -> None:
    """20 IMAP connections of one account FETCH the 50 MB message and never read: in
    turn over plain TCP, implicit TLS and COMPRESS=DEFLATE."""
    kinds = itertools.cycle(["plain", "tls", "deflate"])

    def login() -> Client:
        kind = next(kinds)
        if kind == "tls":
            return imap_login(server.port("imaps"), tls=True)
        client = imap_login(server.port("imap"))
        if kind == "deflate":
            compress(client)
        return client

    hold_unread(server, login, b"f FETCH 1 BODY.PEEK[]\r\n", b"BODY[] {")


def test_imap_binary_unread_is_bounded(server: Server) -> None:
    """The same for BINARY[1], the base64 body decoded on the way (RFC 3516)."""
    port = server.port("imap")
    hold_unread(server, lambda: imap_login(port), b"f FETCH 1 BINARY.PEEK[1]\r\n", b"BINARY[1] ~{")


def pop_login(port: int, user: str) -> Client:
    client = Client(connect(port))
    assert client.line().startswith(b"+OK")
    client.send(f"USER {user}\r\nPASS {PASSWORD}\r\n".encode())
    assert client.line().startswith(b"+OK")
    assert client.line().startswith(b"+OK"), "login"
    return client


def test_pop3_retr_unread_is_bounded(server: Server) -> None:
    """20 POP3 sessions (20 accounts: a session locks its maildrop) RETR the message and
    never read."""
    users = iter(POP_USERS)
    port = server.port("pop3")
    hold_unread(server, lambda: pop_login(port, next(users)), b"RETR 1\r\n", b" octets\r\n")


# --- exact bytes ---------------------------------------------------------------------

RANGE = (1000, 3 * MIB)


def stored_imap(client: Client) -> bytes:
    """The message as stored: its header (small, read into memory) and TEXT."""
    client.send(b"h FETCH 1 (BODY.PEEK[HEADER])\r\n")
    line = client.line()
    match = LITERAL.search(line)
    assert match is not None, line
    header = client.buf[: int(match.group(2))]
    while len(header) < int(match.group(2)):
        client.fill()
        header = client.buf[: int(match.group(2))]
    client.buf = client.buf[len(header) :]
    assert imap_done(client, b"h").startswith(b"h OK")
    assert header.endswith(MESSAGE[: len(MESSAGE) - len(TEXT)])  # trace fields, then ours
    return header + TEXT


def check_answers(client: Client) -> None:
    """The whole message, TEXT, a partial range and BINARY[] (RFC 3516: a <literal>,
    since the data holds no NUL), each exact."""
    stored = stored_imap(client)
    [(head, *whole)] = imap_fetch(client, b"w", b"BODY.PEEK[]")
    assert head.endswith(b"BODY[] {%d}" % len(stored)) and tuple(whole) == sha(stored)
    [(head, *text)] = imap_fetch(client, b"t", b"BODY.PEEK[TEXT]")
    assert head.endswith(b"BODY[TEXT] {%d}" % len(TEXT)) and tuple(text) == sha(TEXT)
    origin, length = RANGE
    [(_, *part)] = imap_fetch(client, b"p", b"BODY.PEEK[]<%d.%d>" % RANGE)
    assert tuple(part) == sha(stored[origin : origin + length])
    [(head, *binary)] = imap_fetch(client, b"b", b"BINARY.PEEK[] BINARY.SIZE[]")
    assert head.endswith(b"BINARY[] {%d}" % len(stored)) and tuple(binary) == sha(stored)
    # The base64 body decoded: a literal8, since random bytes hold NUL (RFC 3516 §4.3).
    [(head, *decoded)] = imap_fetch(client, b"d", b"BINARY.SIZE[1] BINARY.PEEK[1]")
    assert b"BINARY.SIZE[1] %d " % len(PAYLOAD) in head
    assert head.endswith(b"BINARY[1] ~{%d}" % len(PAYLOAD)) and tuple(decoded) == sha(PAYLOAD)
    [(head, *piece)] = imap_fetch(client, b"q", b"BINARY.PEEK[1]<%d.%d>" % RANGE)
    assert tuple(piece) == sha(PAYLOAD[origin : origin + length])
    client.send(b"n NOOP\r\n")
    assert imap_done(client, b"n").startswith(b"n OK")  # the connection is still in step


def test_reading_clients_get_exact_bytes_plain(server: Server) -> None:
    client = imap_login(server.port("imap"))
    try:
        check_answers(client)
    finally:
        client.close()


def test_reading_clients_get_exact_bytes_tls(server: Server) -> None:
    client = imap_login(server.port("imaps"), tls=True)
    try:
        check_answers(client)
    finally:
        client.close()


def test_reading_clients_get_exact_bytes_compressed(server: Server) -> None:
    client = imap_login(server.port("imap"))
    try:
        compress(client)
        check_answers(client)
    finally:
        client.close()


def test_pop3_reader_gets_exact_bytes(server: Server) -> None:
    """RETR streams the dot-stuffed message; undone, it is the stored message."""
    client = pop_login(server.port("pop3"), POP_USERS[0])
    try:
        client.send(b"TOP 1 0\r\n")  # the stored header: delivery added trace fields
        assert client.line().startswith(b"+OK")
        header = b""
        while (line := client.line()) != b".":
            header += (line[1:] if line.startswith(b".") else line) + b"\r\n"
        stored = header + TEXT
        client.send(b"RETR 1\r\n")
        assert client.line() == b"+OK %d octets" % len(stored)
        digest = hashlib.sha256()
        while (line := client.line()) != b".":
            digest.update((line[1:] if line.startswith(b".") else line) + b"\r\n")
        assert digest.hexdigest() == hashlib.sha256(stored).hexdigest()
        client.send(b"QUIT\r\n")
        assert client.line().startswith(b"+OK")
    finally:
        client.close()
