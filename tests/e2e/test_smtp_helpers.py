"""Helpers shared by the SMTP end-to-end tests (and a check of them): read a mailbox
from the store, talk raw SMTP over a socket (for what smtplib refuses to send), build
TLS client contexts."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from tests.e2e.conftest import RunningServer


def client_tls() -> ssl.SSLContext:
    """Our test server uses a self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def mailbox(server: RunningServer, address: str, name: str = "INBOX") -> list[bytes]:
    """Every message of the account's mailbox, oldest first, straight from the store."""
    store: Any = server.store

    async def read() -> list[bytes]:
        account = await store.get_account(address)
        assert account is not None, address
        box = await store.get_mailbox(account.id, name)
        assert box is not None
        return [await store.read_message(box.id, uid) for uid in await store.uids(box.id)]

    return server.call(read)


def queue(server: RunningServer) -> list[Any]:
    store: Any = server.store
    return server.call(store.list_queue)


def add_alias(server: RunningServer, source: str, *targets: str) -> None:
    accounts: Any = server.services.accounts
    server.call(lambda: accounts.add_alias(source, list(targets)))


def headers_of(message: bytes) -> list[tuple[str, str]]:
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            fields.append((name, value.strip()))
    return fields


class RawSmtp:
    """A line-oriented SMTP client that sends exactly the bytes it is given."""

    def __init__(self, port: int, *, tls: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock: socket.socket | ssl.SSLSocket = client_tls().wrap_socket(sock) if tls else sock
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self) -> bytes:
        """One complete (possibly multi-line) reply, lines joined with CRLF."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return b"\r\n".join(lines)

    def cmd(self, data: bytes) -> bytes:
        self.send(data + b"\r\n")
        return self.reply()

    def starttls(self) -> None:
        assert self.cmd(b"STARTTLS").startswith(b"220")
        assert isinstance(self.sock, socket.socket)
        self.sock = client_tls().wrap_socket(self.sock)

    def closed_by_server(self) -> bool:
        """True once the server has closed the connection (reads EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def test_headers_of_unfolds() -> None:
    """The header reader the other SMTP tests rely on joins folded lines."""
    assert headers_of(b"A: 1\r\nB: x\r\n\ty\r\n\r\nbody") == [("A", "1"), ("B", "x y")]
