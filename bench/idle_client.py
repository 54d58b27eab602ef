"""Many IDLE connections in one client process, for the ``idle_fanout`` workload.

The workload starts a few of these processes (``multiprocessing``, spawn) so that the
client is not one Python event loop reading thousands of sockets on one core. Each process
opens its share of the connections (LOGIN, SELECT INBOX, IDLE, a bounded number of
log-ins at a time), then obeys the workload over a pipe:

- ``("arm", token)``: from now on, note for each connection the first time bytes
  containing *token* (``b" EXISTS"``, ``b"\\\\Flagged"``) arrive; answer ``("armed",)``.
- ``("collect", timeout)``: wait until every connection saw the token or *timeout*
  passes; answer ``("seen", [time or None per connection], cpu_seconds)``, the CPU this
  process used since the ``arm``.
- ``("stop",)``: DONE, LOGOUT, close; answer ``("stopped",)``.

Times are ``time.monotonic()``, the same clock in every process on Linux, taken as the
bytes are read: a connection's latency includes its wait for this process. Set-up runs
on asyncio; from ``arm`` to the end of ``collect`` the process instead watches with a
plain ``epoll`` over the raw sockets (`Fleet.watch`: asyncio's reading paused, the
control pipe in the same poll; the sockets registered once, level-triggered), one
``os.read`` and a substring search (plus a short tail for a token split across reads) per
connection and event. Through asyncio each readable socket cost a loop handle, a
transport callback and ``data_received``: ~45 µs of CPU per connection and event, 0.45 s
per event at 10,000 connections, taken from the same two cores as the server under test
and added to the tail of its latencies; the raw watch costs a few µs.

Must not: connect anywhere but the given loopback host; wait without a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

#: Log-ins in flight per client process: enough to keep the server busy, few enough that
#: the listen backlog and the login path are not flooded.
CONCURRENT_LOGINS = 32
SETUP_TIMEOUT = 60.0
_TAIL = 16


def raise_fd_limit() -> int:
    """Lift this process's soft RLIMIT_NOFILE to its hard limit; return the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class IdleConnection(asyncio.Protocol):
    """One IMAP connection: line-wise during set-up, a token watcher once idling."""

    def __init__(self, on_seen: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[bytes] | None = None
        self._prefix = b""
        self._closed = asyncio.get_running_loop().create_future()
        self._on_seen = on_seen
        self._tail = b""
        self.token: bytes | None = None
        self.seen: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        token = self.token
        if token is not None:
            if self.seen is None and token in self._tail + data:
                self.seen = time.monotonic()
                self._on_seen()
            self._tail = data[-_TAIL:]
            return
        self._buffer += data
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed by server"))

    def _check(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            if line.startswith(self._prefix):
                waiter.set_result(line)
                return

    async def line(self, prefix: bytes) -> bytes:
        """The next line starting with *prefix* (earlier lines are dropped)."""
        self._prefix = prefix
        self._waiter = asyncio.get_running_loop().create_future()
        self._check()
        return await self._waiter

    async def command(self, tag: bytes, text: bytes) -> None:
        assert self.transport is not None
        self.transport.write(tag + b" " + text + b"\r\n")
        reply = await self.line(tag + b" ")
        if not reply[len(tag) + 1 :].upper().startswith(b"OK"):
            raise ConnectionError(f"{text.split()[0].decode()}: {reply[:200]!r}")

    async def close(self) -> None:
        if self.transport is None:
            return
        with contextlib.suppress(Exception):
            self.transport.write(b"DONE\r\nz LOGOUT\r\n")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._closed), 2.0)
        self.transport.close()


class Fleet:
    """This process's connections and what they have seen since the last ``arm``."""

    def __init__(self) -> None:
        self.connections: list[IdleConnection] = []
        self.missing = 0
        self.all_seen = asyncio.Event()
        #: From the first `watch` on: the raw sockets' poll, and their connections by fd.
        self._poller: select.epoll | None = None
        self._by_fd: dict[int, IdleConnection] = {}

    def _seen(self) -> None:
        self.missing -= 1
        if self.missing <= 0:
            self.all_seen.set()

    async def open_one(self, host: str, port: int, user: str, password: str) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: IdleConnection(self._seen), host, port)
        self.connections.append(conn)
        await conn.line(b"* OK")
        quoted = password.replace("\\", "\\\\").replace('"', '\\"')
        await conn.command(b"a", f'LOGIN "{user}" "{quoted}"'.encode())
        await conn.command(b"b", b"SELECT INBOX")
        assert conn.transport is not None
        conn.transport.write(b"c IDLE\r\n")
        await conn.line(b"+")

    async def open(self, count: int, host: str, port: int, user: str, password: str) -> None:
        gate = asyncio.Semaphore(CONCURRENT_LOGINS)

        async def one() -> None:
            async with gate:
                await self.open_one(host, port, user, password)

        async with asyncio.timeout(SETUP_TIMEOUT + count * 0.05):
            await asyncio.gather(*(one() for _ in range(count)))

    def arm(self, token: bytes) -> None:
        self._drop_stale()
        self.all_seen.clear()
        self.missing = len(self.connections)
        for conn in self.connections:
            conn.seen = None
            conn._tail = b""
            conn.token = token
        if not self.connections:
            self.all_seen.set()

    def watch(self, control: Connection) -> list[float | None]:
        """After `arm`: watch every connection for the token with a plain epoll, blocking
        this (asyncio) thread, until the ``("collect", timeout)`` from *control* arrives
        and then every connection has seen the token or the timeout has passed. Returns
        each connection's time, like `collect`.

        The first call takes the sockets from asyncio for good (reading paused; `close`
        gives them back) and registers them once, level-triggered: per connection and
        event that leaves one readiness and one ``read``, no ``epoll_ctl``."""
        if self._poller is None:
            self._take_sockets()
        assert self._poller is not None
        self._watch(control)
        return [conn.seen for conn in self.connections]

    def _take_sockets(self) -> None:
        poller = select.epoll(len(self.connections) + 1)
        for conn in self.connections:
            transport = conn.transport
            assert transport is not None
            transport.pause_reading()
            fd = transport.get_extra_info("socket").fileno()
            self._by_fd[fd] = conn
            poller.register(fd, select.EPOLLIN)
        self._poller = poller

    def _give_back_sockets(self) -> None:
        if self._poller is None:
            return
        self._poller.close()
        self._poller = None
        self._by_fd.clear()
        for conn in self.connections:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.resume_reading()

    def _drop_stale(self) -> None:
        """Read and forget what arrived since the last event (a rev1 session's ``RECENT``
        after its ``EXISTS``, say), so it is not searched for the next token; a socket
        the server closed leaves the poll."""
        poller = self._poller
        if poller is None:
            return
        while events := poller.poll(0):
            for fd, _ in events:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    self._by_fd.pop(fd, None)

    def _watch(self, control: Connection) -> None:
        poller = self._poller
        assert poller is not None
        by_fd = self._by_fd
        token = b""
        watching = 0  # connections neither seen nor closed
        for conn in by_fd.values():
            assert conn.token is not None
            token = conn.token
            watching += 1
        ctl = control.fileno()
        poller.register(ctl, select.EPOLLIN)
        deadline: float | None = None  # set by "collect"
        monotonic, read = time.monotonic, os.read
        try:
            while True:
                if deadline is None:
                    timeout = -1.0
                else:
                    timeout = deadline - monotonic()
                    if watching == 0 or timeout <= 0:
                        return
                for fd, _ in poller.poll(timeout):
                    if fd == ctl:
                        message = control.recv()
                        if message[0] != "collect":
                            raise RuntimeError(f"expected collect, got {message[0]!r}")
                        deadline = monotonic() + float(message[1])
                        continue
                    conn = by_fd[fd]
                    try:
                        data = read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        poller.unregister(fd)
                        del by_fd[fd]
                        if conn.seen is None:
                            watching -= 1
                    elif conn.seen is None:
                        if token in conn._tail + data:
                            conn.seen = monotonic()
                            watching -= 1
                        else:
                            conn._tail = data[-_TAIL:]
        finally:
            poller.unregister(ctl)

    async def collect(self, timeout: float) -> list[float | None]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_seen.wait(), timeout)
        return [conn.seen for conn in self.connections]

    async def close(self) -> None:
        self._give_back_sockets()
        await asyncio.gather(*(conn.close() for conn in self.connections))


async def _serve(control: Connection, spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    fleet = Fleet()
    try:
        await fleet.open(spec["count"], spec["host"], spec["port"], spec["user"], spec["password"])
    except Exception as exc:
        control.send(("failed", f"{type(exc).__name__}: {exc}", len(fleet.connections)))
        await fleet.close()
        return
    control.send(("ready", len(fleet.connections)))
    armed_cpu = time.process_time()
    while True:
        message = await loop.run_in_executor(None, control.recv)
        if message[0] == "arm":
            armed_cpu = time.process_time()
            fleet.arm(message[1])
            control.send(("armed",))
            seen = fleet.watch(control)  # takes the "collect" that ends it
            control.send(("seen", seen, time.process_time() - armed_cpu))
        elif message[0] == "collect":
            seen = await fleet.collect(message[1])
            control.send(("seen", seen, time.process_time() - armed_cpu))
        else:
            await fleet.close()
            control.send(("stopped",))
            return


def batch_scheduling() -> bool:
    """Put this process in SCHED_BATCH (Linux): it still gets an idle core at once, but
    its wake-ups no longer preempt a running process. Each byte the server pushes wakes a
    client process; under the default policy that wake-up could preempt the server in the
    middle of its fan-out, so thousands of context switches went into the figure being
    measured. False where the policy does not exist."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def worker(control: Connection, spec: dict[str, Any]) -> None:
    """Entry point of a client process (``spec``: count, host, port, user, password)."""
    raise_fd_limit()
    batch_scheduling()
    try:
        asyncio.run(_serve(control, spec))
    finally:
        control.close()
