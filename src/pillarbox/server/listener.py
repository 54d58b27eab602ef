"""The shared TCP listener that SMTP, IMAP and POP3 front-ends run on.

It owns sockets, TLS (implicit and STARTTLS), idle timeouts, connection ids and
connection limits; protocol front-ends get a `Stream` and never touch asyncio streams
or ssl objects directly. A handler's unexpected exception is logged with the connection
id and the connection is closed; it never reaches the peer or other connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
import ssl
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pillarbox.config import parse_address
from pillarbox.server.preauth import PreauthGate, PreauthLimits
from pillarbox.server.refusals import RefusalLog

log = logging.getLogger("pillarbox.listener")

_conn_counter = itertools.count(1)

READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    max_connections: int = 2000
    max_per_ip: int = 50
    rate_per_ip: int = 0  # new connections per minute from one IP; 0 = unlimited


class ConnectionRate:
    """Token bucket per client IP: `rate` connections a minute, bursting up to `rate`."""

    MAX_TRACKED = 100_000

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, ip: str) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        tokens, last = self._buckets.get(ip, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * self.rate / 60.0)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return False
        self._buckets[ip] = (tokens - 1.0, now)
        if len(self._buckets) > self.MAX_TRACKED:  # forget full buckets: they carry no state
            for key in [k for k, (t, _) in self._buckets.items() if t >= self.rate - 1]:
                del self._buckets[key]
        return True


REFUSED = "too many connections"  # the reason the refusal log gives


class ConnectionCaps(Protocol):
    """The listener's connection caps: total, per client address, and the per-address
    rate. One process keeps them in its memory (`LocalConnectionCaps`); several worker
    processes behind one port keep them in shared memory (`workers/`), so the caps hold
    for the server as a whole, not per worker. Called on the event loop, never awaits."""

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip`, or the reason it is refused (nothing counted
        then)."""
        ...

    def release(self, ip: str) -> None:
        """An admitted connection from `ip` ended."""
        ...


class LocalConnectionCaps:
    """The caps in this process's memory (one process serves the port)."""

    def __init__(self, limits: ListenerLimits) -> None:
        self._limits = limits
        self._per_ip: Counter[str] = Counter()
        self._rate = ConnectionRate(limits.rate_per_ip)
        self.active = 0

    def admit(self, ip: str) -> str | None:
        if (
            self.active >= self._limits.max_connections
            or self._per_ip[ip] >= self._limits.max_per_ip
            or not self._rate.allow(ip)
        ):
            return REFUSED
        self.active += 1
        self._per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.active -= 1
        self._per_ip[ip] -= 1
        if self._per_ip[ip] <= 0:
            del self._per_ip[ip]


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    listener: str
    peer_ip: str
    peer_port: int
    local_ip: str
    local_port: int
    conn_id: str

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_ip).is_loopback
        except ValueError:
            return False


class Stream:
    """One client connection: read with an idle timeout, write, upgrade to TLS."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        info: ConnectionInfo,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ssl_context = ssl_context
        self.info = info
        self._compression: Deflate | None = None
        # Set by a listener with a pre-login gate (server/preauth.py): called when the
        # session logs in, and when it logs out again (UNAUTHENTICATE).
        self.on_login: Callable[[], None] | None = None
        self.on_logout: Callable[[], None] | None = None

    def logged_in(self) -> None:
        """The session authenticated: it no longer counts as waiting for login."""
        if self.on_login is not None:
            self.on_login()

    def logged_out(self) -> None:
        """The session went back to waiting for a login (IMAP UNAUTHENTICATE)."""
        if self.on_logout is not None:
            self.on_logout()

    def close_now(self, reply: bytes) -> None:
        """Write `reply` (unencrypted streams and TLS alike; not compressed: only a
        session closed before login uses this) and close, without waiting; the socket
        is dropped if the peer has not taken it within a few seconds."""
        transport = self._writer.transport
        if transport.is_closing():
            return
        if reply:
            transport.write(reply)
        transport.close()
        asyncio.get_running_loop().call_later(5.0, transport.abort)

    @property
    def tls_active(self) -> bool:
        return self._writer.get_extra_info("ssl_object") is not None

    @property
    def tls_available(self) -> bool:
        """STARTTLS can be offered: a context exists and TLS is not yet on."""
        return self._ssl_context is not None and not self.tls_active

    @property
    def tls_description(self) -> str | None:
        """E.g. 'TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256', for Received headers."""
        obj = self._writer.get_extra_info("ssl_object")
        if obj is None:
            return None
        cipher = obj.cipher()
        if cipher is None:
            return str(obj.version())
        name, version, bits = cipher
        return f"{obj.version() or version} cipher={name} bits={bits}"

    @property
    def compression_active(self) -> bool:
        return self._compression is not None

    def start_compression(self, pending: bytes = b"") -> None:
        """From now on every byte both ways is raw DEFLATE (RFC 4978 §3); `pending` is
        what the protocol core had already received after the command (compressed)."""
        if self._compression is not None:
            raise RuntimeError("compression is already active")
        self._compression = Deflate(pending)

    async def read(self, timeout: float) -> bytes:
        """Bytes as they arrive; b"" at EOF. Raises TimeoutError after `timeout` idle."""
        try:
            async with asyncio.timeout(timeout):
                if self._compression is None:
                    return await self._reader.read(READ_SIZE)
                return await self._read_compressed(self._compression)
        except (ConnectionError, ssl.SSLError):
            return b""

    async def _read_compressed(self, deflate: Deflate) -> bytes:
        """Decompressed bytes, at most READ_SIZE at a time (so a small compressed input
        cannot make us hold a huge output: a "zip bomb" is inflated piecewise)."""
        while True:
            try:
                out = deflate.inflate()
            except zlib.error:
                log.debug("%s invalid compressed data", self.info.conn_id)
                return b""
            if out:
                return out
            raw = await self._reader.read(READ_SIZE)
            if not raw:
                return b""
            deflate.feed(raw)

    async def write(self, data: bytes) -> None:
        """Write and wait for the buffer to drain, so a slow reader slows only itself."""
        if not data:
            return
        if self._compression is not None:
            data = self._compression.deflate(data)
        self._writer.write(data)
        await self._writer.drain()

    def write_nowait(self, data: bytes) -> bool:
        """Queue `data` on the transport without waiting. True when nothing needs awaiting
        (the buffer is within its limits); False when the caller must `await drain()`:
        the peer is slow to read or the connection is closing. Lets thousands of idle
        sessions take one pushed line each without a coroutine and a timer per write."""
        if self._writer.is_closing():
            return False
        if data:
            if self._compression is not None:
                data = self._compression.deflate(data)
            self._writer.write(data)
        transport = self._writer.transport
        return transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1]

    def unsent(self) -> int:
        """Bytes written but not yet taken by the peer's socket (the transport's buffer;
        the kernel's own buffers come on top)."""
        return int(self._writer.transport.get_write_buffer_size())

    async def drain(self) -> None:
        """Wait until the transport's buffer is back under its limit (ConnectionError
        when the connection is gone)."""
        await self._writer.drain()

    async def start_tls(self) -> None:
        """Upgrade this connection (STARTTLS); the caller must drop buffered plaintext."""
        if self._ssl_context is None:
            raise RuntimeError("no TLS context for this listener")
        # RFC 3207 §4.2: plaintext pipelined after STARTTLS must not survive the
        # upgrade. The core drops what it buffered; drop what asyncio buffered too.
        buffered = getattr(self._reader, "_buffer", None)
        if isinstance(buffered, bytearray):
            buffered.clear()
        await self._writer.start_tls(self._ssl_context)

    def abort(self) -> None:
        """Drop the connection now, discarding unsent output (a peer that stopped
        reading would otherwise make a graceful close wait)."""
        self._writer.transport.abort()

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        try:
            async with asyncio.timeout(5):
                await self._writer.wait_closed()
        except (Exception, asyncio.CancelledError):
            # The peer is not reading what is left (or the server is shutting down):
            # drop it, or the transport would keep the socket and its buffer forever.
            self._writer.transport.abort()


class Deflate:
    """Both directions of a raw DEFLATE stream (RFC 1951, as RFC 4978 §3 uses it: no
    zlib header, so wbits=-15). Every write ends with Z_SYNC_FLUSH so a response is
    never held back in the compressor waiting for more output (RFC 4978 §4)."""

    def __init__(self, pending: bytes = b"") -> None:
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        self._decompressor = zlib.decompressobj(-15)
        self._input = pending

    def deflate(self, data: bytes) -> bytes:
        return self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def feed(self, raw: bytes) -> None:
        self._input += raw

    def inflate(self) -> bytes:
        """Up to READ_SIZE decompressed bytes from what was fed (b"" when it needs more)."""
        if not self._input:
            return b""
        out = self._decompressor.decompress(self._input, READ_SIZE)
        self._input = self._decompressor.unconsumed_tail
        if self._decompressor.eof:
            raise zlib.error("compressed stream ended")  # RFC 4978: it never ends
        return out


Handler = Callable[[Stream], Awaitable[None]]


class Listener:
    """A bound, serving listener; `port` is the real one (useful with port 0)."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None,
        implicit_tls: bool,
        limits: ListenerLimits,
        busy_reply: bytes,
        refusal_interval: float = 60.0,
        preauth: PreauthLimits | None = None,
        caps: ConnectionCaps | None = None,
    ) -> None:
        """`caps`: where the connection caps are counted; by default in this process,
        by `limits`."""
        self.name = name
        self.host = ""
        self.port = 0
        self._handler = handler
        self._ssl_context = ssl_context
        self._implicit_tls = implicit_tls
        self._limits = limits
        self._busy_reply = busy_reply
        self._server: asyncio.Server | None = None
        self._caps: ConnectionCaps = caps if caps is not None else LocalConnectionCaps(limits)
        self._refusals = RefusalLog(name, refusal_interval)
        self.preauth = PreauthGate(preauth) if preauth is not None else None
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, address: str, *, reuse_port: bool = False) -> None:
        """Bind and listen. `reuse_port`: beside the other workers of this server
        (`[server] workers`), which bind the same port; the kernel spreads connections."""
        host, port = parse_address(address, f"listen.{self.name}")
        self._server = await asyncio.start_server(
            self._on_connection,
            host,
            port,
            ssl=self._ssl_context if self._implicit_tls else None,
            ssl_handshake_timeout=30.0 if self._implicit_tls else None,
            reuse_address=True,
            reuse_port=reuse_port or None,
            limit=READ_SIZE,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        info = ConnectionInfo(
            listener=self.name,
            peer_ip=str(peer[0]),
            peer_port=int(peer[1]),
            local_ip=str(local[0]),
            local_port=int(local[1]),
            conn_id=f"{self.name}-{next(_conn_counter)}",
        )
        stream = Stream(reader, writer, info, None if self._implicit_tls else self._ssl_context)
        ip = info.peer_ip
        try:
            refusal = self._caps.admit(ip)
            if refusal is not None:
                self._refusals.refused(ip, info.conn_id, refusal)
                with contextlib.suppress(Exception):
                    await stream.write(self._busy_reply)
                return
            self._active += 1
            gate = self.preauth
            if gate is not None:
                conn_id = info.conn_id
                gate.admit(conn_id, ip, stream.close_now)
                stream.on_login = functools.partial(gate.logged_in, conn_id)
                stream.on_logout = functools.partial(gate.admit, conn_id, ip, stream.close_now)
            try:
                log.debug("%s connected from %s:%s", info.conn_id, ip, info.peer_port)
                await self._handler(stream)
            except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
                log.debug("%s connection ended: %r", info.conn_id, exc)
            except asyncio.CancelledError:
                # Shutdown. Ending normally keeps Python 3.11's stream callback from
                # logging the cancellation as an error.
                log.debug("%s closed by shutdown", info.conn_id)
            except Exception:
                log.exception("%s handler failed", info.conn_id)
            finally:
                if gate is not None:
                    gate.logged_in(info.conn_id)  # gone: leaves the gate too
                self._active -= 1
                self._caps.release(ip)
        finally:
            await stream.close()
            if task is not None:
                self._tasks.discard(task)

    @property
    def active_connections(self) -> int:
        return self._active

    async def close(self) -> None:
        """Stop accepting and end open connections."""
        self._refusals.close()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def start_listener(
    name: str,
    address: str,
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    limits: ListenerLimits | None = None,
    busy_reply: bytes = b"",
    refusal_interval: float = 60.0,
    preauth: PreauthLimits | None = None,
    caps: ConnectionCaps | None = None,
    reuse_port: bool = False,
) -> Listener:
    """Bind and serve. With implicit_tls the handshake happens before the handler runs;
    otherwise `ssl_context` (if any) is what `Stream.start_tls` uses (STARTTLS)."""
    listener = Listener(
        name,
        handler,
        ssl_context=ssl_context,
        implicit_tls=implicit_tls,
        limits=limits or ListenerLimits(),
        busy_reply=busy_reply,
        refusal_interval=refusal_interval,
        preauth=preauth,
        caps=caps,
    )
    await listener.start(address, reuse_port=reuse_port)
    return listener
