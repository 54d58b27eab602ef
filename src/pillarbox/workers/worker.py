"""One worker process's side of the master (`pillarbox serve` with `[server] workers` > 1).

The master starts each worker as `python -m pillarbox worker-process --index I --up FD
--down FD [--counter FD]` (a command `--help` does not list) with those fds inherited.
The worker reads its `Config` from the first frame (ports already resolved: every
worker binds the same ones, with SO_REUSEPORT), runs a whole `App`, says READY with its
listeners' addresses, and follows `down`: other workers' changes for its `HubBus`, a
worker's death, and the end of the stream when the master is gone. It also asks the
kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), so that even a master killed
with SIGKILL leaves no worker serving on its own.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import dataclasses
import logging
import os
import signal
import socket

from pillarbox.config import Config
from pillarbox.store.api import ChangeBus
from pillarbox.workers import wire
from pillarbox.workers.bus import HubBus
from pillarbox.workers.shared import WorkerShared

log = logging.getLogger("pillarbox.workers")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """SIGTERM to this process when its parent dies (Linux); if the parent is already
    gone (it died before this call), SIGTERM now."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: EOF on `down` only
        pass
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def worker_name(index: int) -> str:
    """How logs name a worker: `w1`, `w2`, ..."""
    return f"w{index}"


READ_SIZE = 256 * 1024


@dataclasses.dataclass
class WorkerLink:
    """A worker's connection to its master."""

    index: int
    config: Config  # as the master resolved it, node_id made this worker's own
    up: wire.FrameSender
    down: socket.socket
    counter: wire.StampCounter | None  # SQLite only (PostgreSQL has its relay)
    shared: WorkerShared | None = None  # what the workers count together
    bus: HubBus | None = None

    @property
    def name(self) -> str:
        return worker_name(self.index)

    @classmethod
    def attach(cls, index: int, up: int, down: int, counter: int | None) -> WorkerLink:
        """Take the inherited fds and read the master's INIT frame (blocking: the
        event loop does not run yet)."""
        down_sock = socket.socket(fileno=down)
        down_sock.setblocking(True)
        first = wire.read_frame(down_sock)
        if first is None or first[0] != wire.INIT:
            raise SystemExit(f"worker {index}: no start frame from the master")
        init = wire.decode_object(first[1])
        config: Config = init["config"]
        server = dataclasses.replace(config.server, node_id=f"{config.node_name}.w{index}")
        handle = init.get("shared")
        return cls(
            index=index,
            config=dataclasses.replace(config, server=server),
            up=wire.FrameSender(socket.socket(fileno=up)),
            down=down_sock,
            counter=wire.StampCounter(counter) if counter is not None else None,
            # WorkerShared counts workers from 0; logs and node ids from 1 (w1, w2).
            shared=WorkerShared.attach(handle, index - 1) if handle is not None else None,
        )

    def store_bus(self, local: ChangeBus) -> ChangeBus:
        """What the store publishes to: a `HubBus` on SQLite, `local` otherwise."""
        if self.counter is None:
            return local
        self.bus = HubBus(local, self.counter, self.up.send)
        return self.bus

    def ready(self, addresses: dict[str, tuple[str, int]]) -> None:
        self.up.send(wire.object_frame(wire.READY, addresses))

    async def follow(self) -> None:
        """Until the master is gone: hand what it forwards to the bus."""
        self.down.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=self.down)
        buffer = bytearray()
        try:
            while True:
                # What has arrived, then every whole frame in it: one read for the burst
                # of frames a busy sibling sends, not two awaits per frame.
                try:
                    chunk = await reader.read(READ_SIZE)
                except ConnectionError:
                    return
                if not chunk:
                    return
                buffer += chunk
                start = 0
                while len(buffer) - start >= wire.HEADER.size:
                    size, kind = wire.HEADER.unpack_from(buffer, start)
                    end = start + wire.HEADER.size + size - 1
                    if end > len(buffer):
                        break
                    self._dispatch(kind, bytes(buffer[start + wire.HEADER.size : end]))
                    start = end
                del buffer[:start]
        finally:
            writer.close()

    def _dispatch(self, kind: int, payload: bytes) -> None:
        bus = self.bus
        if kind == wire.CHANGES and bus is not None:
            bus.receive_frame(payload)
        elif kind == wire.DEAD and bus is not None:
            bus.worker_died()

    def close(self) -> None:
        self.up.close()
        if self.counter is not None:
            self.counter.close()
        if self.shared is not None:
            self.shared.close()
