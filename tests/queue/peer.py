"""A test double that is a real server on loopback: a fault-injecting SMTP peer. No
aiosmtpd: a few dozen lines let each test say exactly what the peer offers and answers
(4xx, 5xx, no STARTTLS, no SMTPUTF8, a final dot left unanswered...), or a slow one
that can be told to stall (`data_delay`, `stall`; tests/e2e/test_queue_crash.py). DNS
comes from `tests/dnsserver.py` (the `dns_server` fixture); `load_zone` feeds it
zone-file lines.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.dnsserver import DnsServer

DEFAULT_EXTENSIONS = ("PIPELINING", "SIZE 10240000", "8BITMIME", "DSN", "SMTPUTF8")


@dataclass
class Received:
    """One transaction as the peer saw it."""

    mail: str
    rcpts: list[str]
    data: bytes
    tls: bool


@dataclass
class Peer:
    """An SMTP server on `host`, port 0 unless given. Replies are whole lines without
    CRLF; `rcpt_replies` maps a lower-case address to its reply."""

    host: str = "127.0.0.1"
    port: int = 0
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    tls: ssl.SSLContext | None = None  # offer STARTTLS with this context
    auth: tuple[str, str] | None = None  # offer AUTH PLAIN, accept these credentials
    greeting: str = "220 peer.test ESMTP test"
    mail_reply: str = "250 2.1.0 Ok"
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str = "250 2.0.0 Ok: queued"
    hold: asyncio.Event | None = None  # the end of DATA is answered only once this is set
    greet: asyncio.Event | None = None  # the greeting is sent only once this is set
    data_delay: float = 0.0  # seconds between the final dot and its reply (a slow peer)
    # While true, a final dot whose reply is due is never answered: the transaction goes
    # to `stalled` and the connection waits for the client to go away.
    stall: bool = False
    # Called with the last transaction answered 2xx when the next command arrives on its
    # connection (the client has taken the reply in and moved on).
    after_ack: Callable[[Received], None] | None = None
    data_seen: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    open_connections: int = 0
    # Connection number -> its transaction whose final dot has arrived and is unanswered.
    unanswered: dict[int, Received] = field(default_factory=dict)
    stalled: list[Received] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: asyncio.base_events.Server | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> Peer:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` transactions have arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until `predicate()` holds (checked whenever the peer's state changes)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_connections += 1
        acked: Received | None = None
        tls = False

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        try:
            if self.greet is not None:
                await self.greet.wait()
            await say(self.greeting)
            mail = ""
            rcpts: list[str] = []
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append(text)
                if acked is not None and self.after_ack is not None:
                    self.after_ack(acked)
                acked = None
                verb = text.split(" ", 1)[0].upper()
                if verb == "EHLO":
                    offered = list(self.extensions)
                    if self.tls is not None and not tls:
                        offered.append("STARTTLS")
                    if self.auth is not None:
                        offered.append("AUTH PLAIN")
                    lines = ["peer.test", *offered]
                    for i, item in enumerate(lines):
                        await say(f"250{'-' if i < len(lines) - 1 else ' '}{item}")
                elif verb == "HELO":
                    await say("250 peer.test")
                elif verb == "STARTTLS" and self.tls is not None:
                    await say("220 2.0.0 Ready to start TLS")
                    await writer.start_tls(self.tls)
                    tls = True
                elif verb == "AUTH" and self.auth is not None:
                    given = base64.b64decode(text.split(" ")[2]).split(b"\0")
                    ok = [p.decode() for p in given[1:]] == list(self.auth)
                    await say("235 2.7.0 Ok" if ok else "535 5.7.8 Bad credentials")
                elif verb == "MAIL":
                    mail, rcpts = text, []
                    await say(self.mail_reply)
                elif verb == "RCPT":
                    address = text.split("<", 1)[1].split(">", 1)[0].lower()
                    reply = self.rcpt_replies.get(address, "250 2.1.5 Ok")
                    if reply.startswith("2"):
                        rcpts.append(text)
                    await say(reply)
                elif verb == "DATA":
                    await say("354 End data with <CR><LF>.<CR><LF>")
                    body = bytearray()
                    while (chunk := await reader.readline()) != b".\r\n":
                        if not chunk:
                            return
                        body += chunk[1:] if chunk.startswith(b".") else chunk
                    self.data_seen.set()
                    rx = Received(mail, rcpts, bytes(body), tls)
                    self.unanswered[number] = rx
                    await self._notify()
                    if self.hold is not None:
                        await self.hold.wait()
                    if self.data_delay:
                        await asyncio.sleep(self.data_delay)
                    if self.stall:
                        self.stalled.append(rx)
                        await self._notify()
                        while await reader.read(4096):
                            pass
                        return
                    await say(self.data_reply)
                    del self.unanswered[number]
                    if self.data_reply.startswith("2"):
                        acked = rx
                        async with self._changed:
                            self.received.append(rx)
                            self._changed.notify_all()
                elif verb == "RSET":
                    mail, rcpts = "", []
                    await say("250 2.0.0 Ok")
                elif verb == "NOOP":
                    await say("250 2.0.0 Ok")
                elif verb == "QUIT":
                    await say("221 2.0.0 Bye")
                    break
                else:
                    await say("502 5.5.2 Not implemented")
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self.unanswered.pop(number, None)
            self.open_connections -= 1
            await self._notify()


def refused_port(host: str = "127.0.0.1") -> int:
    """A port on `host` nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def load_zone(dns: DnsServer, lines: list[str]) -> None:
    """Zone-file lines ("remote.test. 60 IN MX 10 mx1.remote.test.") into `dns`."""
    for line in lines:
        name, _ttl, _class, rtype, value = line.split(None, 4)
        dns.add(name, rtype, value)
