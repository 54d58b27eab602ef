"""Live updates: the account's changes pushed to open pages as server-sent events.

``GET /events`` is an ``text/event-stream`` (the WHATWG HTML "server-sent events"
format) fed by the same change bus that wakes IMAP IDLE sessions: every committed new
message, flag change, expunge and mailbox change of the signed-in account becomes one
``change`` event naming its kind and mailbox, so a change made over IMAP, POP3, SMTP or
another browser reaches the page as soon as it is committed. The page (``app.js``)
then reloads its list in the background. Events carry no message data: the page asks
for it with its own session, through the same checks as any page.

A stream ends when its session does: at sign-out at once (`end_streams`), and on idle
expiry or the lifetime's end at the next keep-alive comment. It never keeps a session
alive by itself. When the server stops, `close_all` ends every stream so shutdown does
not wait for them.

Must not: send message contents, or events of another account.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pillarbox.model import (
    Change,
    FlagsChanged,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
)
from pillarbox.web.context import WebContext

KEEPALIVE = 20.0  # seconds between comments on a quiet stream (proxies drop idle ones)
RETRY_MS = 2000  # how long the browser waits before it reconnects a dropped stream
MAX_STREAMS = 8  # per session: a few tabs; each holds a change-bus subscription


def event_bytes(change: Change) -> bytes:
    """One ``change`` event: kind and mailbox id (None for account-wide changes)."""
    if isinstance(change, MessagesAdded):
        kind = "added"
    elif isinstance(change, FlagsChanged):
        kind = "flags"
    elif isinstance(change, MessagesExpunged):
        kind = "expunged"
    elif isinstance(change, MailboxesChanged):
        kind = "mailboxes"
    else:
        kind = "resync"  # events were lost: the page reloads everything
    mailbox = getattr(change, "mailbox_id", None)
    data = json.dumps({"kind": kind, "mailbox": mailbox}, separators=(",", ":"))
    return f"event: change\ndata: {data}\n\n".encode()


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def events(request: Request) -> Response:
        session = ctx.signed_in(request)
        if ctx.streams.count(session.id) >= MAX_STREAMS:
            # 429 makes the browser's EventSource give up, not retry in a loop.
            return Response("Too many open pages", status_code=429)
        sub = ctx.services.changes.subscribe(session.account.id)
        ctx.streams.add(session.id, sub)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
                while True:
                    try:
                        change = await asyncio.wait_for(sub.__anext__(), KEEPALIVE)
                    except TimeoutError:
                        if not ctx.sessions.alive(session.id):
                            return
                        yield b": keep-alive\n\n"
                        continue
                    except StopAsyncIteration:
                        return
                    yield event_bytes(change)
            finally:
                ctx.streams.discard(session.id, sub)
                await sub.aclose()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [Route("/events", events, methods=["GET"])]
