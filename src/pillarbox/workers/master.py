"""The master of `pillarbox serve` with `[server] workers` > 1.

It serves nothing itself. Before starting the workers, the command line has it check
the configuration and data directory and open the store once (migrations, SQLite's
orphan collection), so that workers never race on them. The master then

- resolves the listening ports: each "host:port" is bound once here with SO_REUSEPORT
  and not listened on (no connection is ever queued on it). Port 0 so becomes a fixed
  port every worker binds too, and a port another program holds fails here, at once.
  The reservations stay open while the master runs, so a restarting worker finds its
  port still ours;
- starts the workers with `subprocess` (a fresh interpreter each: no fork of a process
  that holds threads), each with two socketpairs and, on SQLite, the stamp counter
  (`wire.StampCounter`), all passed as inherited fds (`pass_fds`);
- is the hub of the change bus: every CHANGES frame a worker sends is forwarded as it
  is to every other worker; when a worker dies, the others are told (DEAD), so they
  stop waiting for a stamp it took and never sent (workers/bus.py);
- prints the listening lines once, when every worker has said READY;
- restarts a worker that dies, after a back-off; one that keeps dying soon after it
  starts makes the master stop everything and exit with its status. A worker that
  fails while the server starts (a port in use, a bad store) ends the start the same;
- on SIGTERM or SIGINT, sends SIGTERM to every worker (each stops as `App.stop` does:
  listeners closed, queued sends finished, store closed), waits, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence

from pillarbox.config import Config, parse_address
from pillarbox.workers import wire
from pillarbox.workers.shared import WorkerShared
from pillarbox.workers.worker import worker_name

log = logging.getLogger("pillarbox.workers.master")

BACKOFF = 0.5  # seconds before the first restart of a dead worker, doubling
BACKOFF_MAX = 10.0
STABLE = 10.0  # a worker that ran this long before dying starts its back-off afresh
MAX_FAILURES = 5  # deaths in a row, each before STABLE: the master gives up
STOP_TIMEOUT = 120.0  # seconds workers have to stop before SIGKILL
DEAD_NOTICE_DELAY = 0.05  # let the other workers' frames in flight be forwarded first

Announce = Callable[[dict[str, tuple[str, int]]], None]


def reserve_ports(config: Config) -> tuple[Config, list[socket.socket]]:
    """`config` with every enabled listener's port resolved (port 0 → the port the
    kernel gave), and the reservation sockets that hold those ports."""
    held: list[socket.socket] = []
    resolved: dict[str, str] = {}
    try:
        for f in dataclasses.fields(config.listen):
            value = getattr(config.listen, f.name)
            if not value:
                continue
            host, port = parse_address(value, f"listen.{f.name}")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise OSError(exc.errno, f"listen.{f.name}: {value}: {exc.strerror}") from None
            port = sock.getsockname()[1]
            resolved[f.name] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    except BaseException:
        for sock in held:
            sock.close()
        raise
    listen = dataclasses.replace(config.listen, **resolved)
    return dataclasses.replace(config, listen=listen), held


@dataclasses.dataclass
class Slot:
    """One worker's place: its process and the master's ends of its sockets."""

    index: int
    proc: asyncio.subprocess.Process | None = None
    down: asyncio.StreamWriter | None = None
    # The other halves of the two streams: unused, but a StreamWriter closes its
    # transport when it is garbage collected, so they are kept while the worker runs.
    keep: list[object] = dataclasses.field(default_factory=list)
    ready: bool = False
    addresses: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return worker_name(self.index)


class Master:
    """Starts, watches and stops the workers (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        command: Sequence[str],
        stamped: bool,
        announce: Announce,
    ) -> None:
        """`command`: how to start a worker, before its `--index ...` arguments (the
        interpreter, `-m pillarbox`, the `--config` given, `worker-process`).
        `stamped`: SQLite, whose workers share a stamp counter and the hub bus."""
        self.config = config
        self._command = list(command)
        self._stamped = stamped
        self._announce = announce
        self._slots = [Slot(i) for i in range(1, config.server.workers + 1)]
        self._counter: wire.StampCounter | None = None
        self._shared: WorkerShared | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        self._announced = False
        self.exit_code = 0

    async def run(self) -> int:
        """Until SIGTERM/SIGINT, or a failure that ends the server; the exit status."""
        config, reservations = reserve_ports(self.config)
        self.config = config
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        if self._stamped:
            self._counter = wire.StampCounter.create()
        # Connection caps, sessions per account, verified credentials (workers/shared.py)
        self._shared = WorkerShared.create(workers=len(self._slots))
        tasks = [asyncio.create_task(self._supervise(slot)) for slot in self._slots]
        try:
            await self._stop.wait()
            self._stopping = True
            for slot in self._slots:
                self._signal(slot, signal.SIGTERM)
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            if late:
                log.error("workers still running after %.0f s: killing them", STOP_TIMEOUT)
                for slot in self._slots:
                    self._signal(slot, signal.SIGKILL)
                await asyncio.wait(late)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for sock in reservations:
                sock.close()
            if self._counter is not None:
                self._counter.close()
            if self._shared is not None:
                self._shared.close()
        log.info("stopped")
        return self.exit_code

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self._stopping:
            log.info("shutting down (%s): stopping the workers", sig.name)
        self._stopping = True
        self._stop.set()

    def _fail(self, code: int) -> None:
        self.exit_code = code or 1
        self._stopping = True
        self._stop.set()

    @staticmethod
    def _signal(slot: Slot, sig: signal.Signals) -> None:
        proc = slot.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    # --- one worker ------------------------------------------------------------------
    async def _supervise(self, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            started = loop.time()
            try:
                reader = await self._spawn(slot)
            except OSError as exc:
                log.error("%s could not be started: %s", slot.name, exc)
                self._fail(1)
                return
            code = await self._watch(slot, reader)
            if self._stopping:
                return
            how = f"signal {-code}" if code < 0 else f"status {code}"
            if not self._announced:
                log.error("%s exited during start-up (%s): stopping", slot.name, how)
                self._fail(code if code > 0 else 1)
                return
            log.warning("%s died unexpectedly (%s): restarting it", slot.name, how)
            loop.call_later(DEAD_NOTICE_DELAY, self._tell_others, slot, wire.frame(wire.DEAD, b""))
            if self._shared is not None:
                self._shared.drop_worker(slot.index - 1)  # its connections and sessions
            failures = failures + 1 if loop.time() - started < STABLE else 1
            if failures >= MAX_FAILURES:
                log.error("%s keeps dying at start (%d times): stopping", slot.name, failures)
                self._fail(1)
                return
            delay = min(BACKOFF_MAX, BACKOFF * 2 ** (failures - 1))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _spawn(self, slot: Slot) -> asyncio.StreamReader:
        up_master, up_worker = socket.socketpair()
        down_master, down_worker = socket.socketpair()
        fds = [up_worker.fileno(), down_worker.fileno()]
        args = ["--index", str(slot.index), "--master", str(os.getpid())]
        args += ["--up", str(fds[0]), "--down", str(fds[1])]
        if self._counter is not None:
            fds.append(self._counter.fd)
            args += ["--counter", str(self._counter.fd)]
        init: dict[str, object] = {"config": self.config}
        if self._shared is not None:
            fds += self._shared.pass_fds
            init["shared"] = self._shared.handle
        try:
            slot.proc = await asyncio.create_subprocess_exec(
                *self._command,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=None,  # the master's: one log
                pass_fds=fds,
            )
        except BaseException:
            for sock in (up_master, down_master):
                sock.close()
            raise
        finally:
            up_worker.close()
            down_worker.close()
        slot.ready = False
        reader, up_writer = await asyncio.open_unix_connection(sock=up_master)
        down_reader, slot.down = await asyncio.open_unix_connection(sock=down_master)
        slot.keep = [up_writer, down_reader]
        slot.down.write(wire.object_frame(wire.INIT, init))
        log.info("%s started (pid %d)", slot.name, slot.proc.pid)
        return reader

    async def _watch(self, slot: Slot, reader: asyncio.StreamReader) -> int:
        """Serve one worker's frames until its end; its exit status (-N: signal N)."""
        while True:
            try:
                head = await reader.readexactly(wire.HEADER.size)
                size, kind = wire.HEADER.unpack(head)
                payload = await reader.readexactly(size - 1)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            if kind == wire.CHANGES:
                self._tell_others(slot, head + payload)
            elif kind == wire.READY:
                self._on_ready(slot, wire.decode_object(payload))
        slot.ready = False
        if slot.down is not None:
            slot.down.close()
            slot.down = None
        for half in slot.keep:
            if isinstance(half, asyncio.StreamWriter):
                half.close()
        slot.keep = []
        assert slot.proc is not None
        return await slot.proc.wait()

    def _tell_others(self, sender: Slot, data: bytes) -> None:
        for slot in self._slots:
            if slot is not sender and slot.down is not None and not slot.down.is_closing():
                slot.down.write(data)

    def _on_ready(self, slot: Slot, addresses: dict[str, tuple[str, int]]) -> None:
        slot.ready, slot.addresses = True, addresses
        if self._announced:
            log.info("%s serving again", slot.name)
            return
        if all(s.ready for s in self._slots):
            self._announced = True
            self._announce(self._slots[0].addresses)


def worker_command(config_path: str | None) -> list[str]:
    """`python -m pillarbox [--config FILE] worker-process` with this interpreter."""
    cmd = [sys.executable, "-m", "pillarbox"]
    if config_path:
        cmd += ["--config", config_path]
    return [*cmd, "worker-process"]
