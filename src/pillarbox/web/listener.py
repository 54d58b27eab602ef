"""The `http` listener: the webmail's ASGI app served by Hypercorn on the running loop.

Why Hypercorn: `hypercorn.asyncio.serve` is documented for running inside an event
loop someone else owns, and with a `shutdown_trigger` it installs no signal handlers,
so `pillarbox serve` keeps its own SIGINT/SIGTERM handling and stops the webmail with
the mail listeners. (uvicorn's `Server.serve` replaces the process's signal handlers
while it runs and re-raises the signals afterwards.) It runs on whatever loop is
running — uvloop under `pillarbox serve`.

The socket is bound here, before Hypercorn starts, and handed over as ``fd://``
(Hypercorn's documented bind for an inherited socket): the real port is known at once
(tests bind port 0), and a port already in use fails `App.start` like any listener.

The edge of HTTP is set here, from ``[web]``: a request's head arriving in pieces is
buffered up to `limits.MAX_HEAD` bytes (h11 refuses more: 431 and closed); a connection
idle between requests, or still sending a request's head, is closed after
``keep_alive_timeout`` (Hypercorn's idle timer runs until a whole head has arrived, so
a client sending its header fields slowly, slowloris, is dropped then whatever it
trickles); nothing received for ``read_timeout`` in the middle of a body closes it too.
Requests at once are capped by `limits.InFlight`.

Must not: decide anything about requests (`routes` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from pillarbox.config import Config, parse_address
from pillarbox.services.context import Services
from pillarbox.web.context import WebContext
from pillarbox.web.limits import MAX_HEAD
from pillarbox.web.routes import make_app, make_context

log = logging.getLogger("pillarbox.web")

SHUTDOWN_GRACE = 2.0  # seconds requests in flight get to finish when the server stops


def browser_url(host: str, port: int, hostname: str) -> str:
    """Where a browser reaches a webmail bound to host:port; on every address (0.0.0.0,
    ::), by the server's host name."""
    host = hostname if host in ("0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


class WebListener:
    """The bound, serving webmail; `port` is the real one (useful with port 0)."""

    name = "http"

    def __init__(self, services: Services, config: Config) -> None:
        self._hostname = config.server.hostname
        self._web = config.web
        self.host = ""
        self.port = 0
        self._context = make_context(services, config)
        self._app = make_app(services, config, self._context)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def context(self) -> WebContext:
        """The running app's sessions and streams (for `close`, and tests)."""
        return self._context

    @property
    def url(self) -> str:
        """Where a browser reaches it; on every address (0.0.0.0, ::), by the server's
        host name."""
        return browser_url(self.host, self.port, self._hostname)

    async def start(self, address: str, *, reuse_port: bool = False) -> None:
        """Bind and serve; `reuse_port` beside the other workers (`[server] workers`)."""
        host, port = parse_address(address, "listen.http")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=128, reuse_port=reuse_port)
        sock.setblocking(False)
        self.host, self.port = sock.getsockname()[:2]
        settings = HypercornConfig()
        settings.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the socket from here
        settings.accesslog = None
        settings.errorlog = log
        settings.include_server_header = False
        settings.graceful_timeout = SHUTDOWN_GRACE
        settings.read_timeout = int(self._web.read_timeout) or 1  # Hypercorn wants an int
        settings.keep_alive_timeout = self._web.keep_alive_timeout
        settings.h11_max_incomplete_size = MAX_HEAD
        settings.backlog = 128
        self._task = asyncio.create_task(
            # Starlette's ASGI signature is looser than Hypercorn's typed one.
            serve(self._app, settings, shutdown_trigger=self._stop.wait, mode="asgi"),  # type: ignore[arg-type]
            name="webmail",
        )

    async def close(self) -> None:
        self._stop.set()
        await self._context.streams.close_all()  # open event streams never end by themselves
        if self._task is not None:
            task, self._task = self._task, None
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def start_web(
    services: Services, config: Config, address: str, *, reuse_port: bool = False
) -> WebListener:
    listener = WebListener(services, config)
    await listener.start(address, reuse_port=reuse_port)
    return listener
