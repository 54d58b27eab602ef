"""Live updates: the account's changes pushed to open pages as server-sent events.

``GET /events`` is an ``text/event-stream`` (the WHATWG HTML "server-sent events"
format) fed by the same change bus that wakes IMAP IDLE sessions: every committed new
message, flag change, expunge and mailbox change of the signed-in account becomes one
``change`` event naming its kind and mailbox, so a change made over IMAP, POP3, SMTP or
another browser reaches the page as soon as it is committed. The page (``app.js``)
then reloads its content in the background. Events carry no message data: the page
asks for it with its own session, through the same checks as any page.

Catching up. Each batch of events carries an SSE ``id``: the account's *state*
(`account_state`), a short digest of every mailbox's id, name, UIDVALIDITY,
HIGHESTMODSEQ and subscription, read in one query. Every change the bus publishes moves
a HIGHESTMODSEQ (RFC 7162 §3.1.1: new mail, flags, expunge) or the mailbox list, so two
equal states mean nothing the page shows has changed. A browser reconnecting a dropped
stream sends the last id it saw (``Last-Event-ID``); a page reopening its stream after
the tab slept passes the state it was rendered with (``?since=``, from the
``live-state`` meta element that `LiveState` puts in every signed-in page). The
stream subscribes first and reads the state second, so nothing committed in between is
lost; if the state given differs, the stream starts with one ``change`` event of kind
``catchup`` and the page refetches itself once; if it is the same, nothing is sent.
A digest rather than a MODSEQ: HIGHESTMODSEQ is per mailbox, and a page (the folder
list, the unread counts) depends on all of them and on the list itself.

A stream ends when its session does: at sign-out at once (`end_streams`), and on idle
expiry or the lifetime's end at the next keep-alive comment. It never keeps a session
alive by itself. When the server stops, `close_all` ends every stream so shutdown does
not wait for them.

Must not: send message contents, or events of another account.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pillarbox.model import (
    Change,
    FlagsChanged,
    MailboxesChanged,
    MessagesAdded,
    MessagesExpunged,
)
from pillarbox.services.errors import ServiceError
from pillarbox.services.mailbox import AccountMailboxes
from pillarbox.web.context import LIVE_STATE, WebContext
from pillarbox.web.sessions import COOKIE

KEEPALIVE = 20.0  # seconds between comments on a quiet stream (proxies drop idle ones)
RETRY_MS = 2000  # how long the browser waits before it reconnects a dropped stream
MAX_STREAMS = 8  # per session: a few tabs; each holds a change-bus subscription
MAX_BATCH = 256  # changes taken off the subscription before one state read
MAX_STATE = 64  # a longer Last-Event-ID or ?since= is not one of ours: treat as stale


async def account_state(mailboxes: AccountMailboxes) -> str:
    """The account's change position as a short opaque token (the SSE event id): equal
    tokens, nothing the pages show has changed. One store query (the mailbox list)."""
    digest = hashlib.blake2b(digest_size=12)
    for box in sorted(await mailboxes.list_all(), key=lambda m: m.id):
        line = f"{box.id}\t{box.uidvalidity}\t{box.highestmodseq}\t{int(box.subscribed)}"
        digest.update(f"{line}\t{box.name}\n".encode())
    return base64.urlsafe_b64encode(digest.digest()).decode()


def change_kind(change: Change) -> str:
    if isinstance(change, MessagesAdded):
        return "added"
    if isinstance(change, FlagsChanged):
        return "flags"
    if isinstance(change, MessagesExpunged):
        return "expunged"
    if isinstance(change, MailboxesChanged):
        return "mailboxes"
    return "resync"  # events were lost: the page reloads everything


def event_bytes(change: Change, event_id: str | None = None) -> bytes:
    """One ``change`` event: kind and mailbox id (None for account-wide changes), with
    the account's state after it as the event id when given."""
    mailbox = getattr(change, "mailbox_id", None)
    return _event({"kind": change_kind(change), "mailbox": mailbox}, event_id)


def _event(data: dict[str, object], event_id: str | None) -> bytes:
    text = json.dumps(data, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: change\ndata: {text}\n\n".encode()


def catchup_bytes(event_id: str) -> bytes:
    """Sent first on a stream whose client's state is not the account's."""
    return _event({"kind": "catchup", "mailbox": None}, event_id)


def known_state(request: Request) -> str | None:
    """The state the client last saw: the browser's ``Last-Event-ID`` on an automatic
    reconnect (the newest it has), else the page's ``?since=``. None: a new stream
    with nothing to compare (the client only wants changes from now on)."""
    value = request.headers.get("last-event-id") or request.query_params.get("since")
    if value is None:
        return None
    return value[:MAX_STATE]


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def events(request: Request) -> Response:
        session = await ctx.signed_in(request)
        if ctx.streams.count(session.id) >= MAX_STREAMS:
            # 429 makes the browser's EventSource give up, not retry in a loop.
            return Response("Too many open pages", status_code=429)
        # Subscribe before reading the state: a change committed in between is in the
        # state or arrives as an event, never neither.
        sub = ctx.services.changes.subscribe(session.account.id)
        ctx.streams.add(session.id, sub)
        mailboxes = ctx.mailboxes(session)
        seen = known_state(request)
        try:
            state = await account_state(mailboxes)
        except BaseException:
            ctx.streams.discard(session.id, sub)
            await sub.aclose()
            raise

        async def stream() -> AsyncIterator[bytes]:
            try:
                # The id line alone sets the browser's last event id without an event.
                yield f"retry: {RETRY_MS}\nid: {state}\n: connected\n\n".encode()
                if seen is not None and seen != state:
                    yield catchup_bytes(state)
                while True:
                    try:
                        change = await asyncio.wait_for(sub.__anext__(), KEEPALIVE)
                    except TimeoutError:
                        if not await ctx.sessions.alive(session.id):
                            return
                        yield b": keep-alive\n\n"
                        continue
                    except StopAsyncIteration:
                        return
                    # What is already queued goes out together, with one state read.
                    batch = [change]
                    while sub.pending() and len(batch) < MAX_BATCH:
                        batch.append(await sub.__anext__())
                    after = await account_state(mailboxes)
                    for n, each in enumerate(batch, 1):
                        yield event_bytes(each, after if n == len(batch) else None)
            finally:
                ctx.streams.discard(session.id, sub)
                await sub.aclose()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [Route("/events", events, methods=["GET"])]


class LiveState:
    """Puts the account's state into the scope of each signed-in page request, before
    the page is made, for `WebContext.render` to write into the page: the page then
    knows the state it shows at least, and its stream can catch up from there. Read
    before the page's own queries, so a change racing the page makes the page newer
    than its state, never older: at worst one needless refetch."""

    def __init__(self, app: ASGIApp, *, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and _is_page(scope["path"]):
            session = await self.ctx.sessions.peek(Request(scope).cookies.get(COOKIE))
            if session is not None:
                try:
                    state = await account_state(self.ctx.mailboxes(session))
                except ServiceError:
                    state = ""  # the page says why if it fails too; its stream starts fresh
                scope.setdefault("state", {})[LIVE_STATE] = state
        await self.app(scope, receive, send)


def _is_page(path: str) -> bool:
    """Pages a person looks at; not the stream, static files or a message's parts."""
    return not path.startswith(("/static/", "/events", "/read/"))
