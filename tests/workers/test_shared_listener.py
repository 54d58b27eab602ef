"""Two listeners standing for two workers' (one process here; test_shared.py has the
two-process tests), each counting in its own worker column of one shared segment: a
client's connections to either count against one per-address cap, and a connection
that ends frees its place in both.
"""

from __future__ import annotations

import asyncio

from pillarbox.server.listener import ListenerLimits, Stream, start_listener
from pillarbox.workers.shared import WorkerShared


async def greet_and_wait(stream: Stream) -> None:
    await stream.write(b"hello\r\n")
    await stream.read(timeout=30)  # until the client closes


async def test_the_per_address_cap_holds_across_workers_listeners() -> None:
    master = WorkerShared.create(2)
    views = [WorkerShared.attach(master.handle, i) for i in range(2)]
    limits = ListenerLimits(max_connections=10, max_per_ip=2)
    listeners = [
        await start_listener(
            "imap",
            "127.0.0.1:0",
            greet_and_wait,
            limits=limits,
            busy_reply=b"busy\r\n",
            caps=view.caps_for("imap", max_connections=10, max_per_ip=2, rate_per_ip=0),
        )
        for view in views
    ]
    try:
        first = await asyncio.open_connection("127.0.0.1", listeners[0].port)
        second = await asyncio.open_connection("127.0.0.1", listeners[1].port)
        for reader, _ in (first, second):
            assert await reader.readline() == b"hello\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", listeners[0].port)
        assert await reader.readline() == b"busy\r\n"  # two already, one in each worker
        writer.close()
        second[1].close()
        # The server closes the socket after releasing its place: once the client
        # sees the end, the place is free (in either worker).
        assert await second[0].read() == b""
        reader, writer = await asyncio.open_connection("127.0.0.1", listeners[0].port)
        assert await reader.readline() == b"hello\r\n"
        writer.close()
        first[1].close()
    finally:
        for listener in listeners:
            await listener.close()
        for view in (*views, master):
            view.close()
