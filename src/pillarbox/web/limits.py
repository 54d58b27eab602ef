"""A cap on request bodies, enforced before any page reads one.

Starlette reads a whole form into memory, and the sign-in page reads its form before
anyone is signed in: without a cap, one anonymous request could hold gigabytes. Each
path has a cap (`RequestLimits.cap_for`): a few kilobytes for the forms that only carry
a token and credentials, and for writing mail what the SMTP size limit allows after
form encoding. A declared Content-Length over the cap is answered 413 at once; a body
without one (chunked) is counted as it arrives and cut off at the cap.

A request target (path and query) longer than `MAX_TARGET` is 414 (RFC 9112 §3: a
server should answer 414 to a target longer than it is willing to parse), and header
fields over `MAX_HEAD` in all are 431 (RFC 6585 §5). Hypercorn's own cap (h11's
incomplete-event size, also `MAX_HEAD`) only holds a head that arrives in pieces back
from being buffered without end; one that arrives in a single read is parsed whole,
so the cap is checked here too.

`InFlight` caps the requests being answered at once, in all and per client address,
with the mail listeners' ``[limits]`` numbers. Hypercorn has no cap on connections; a
connection that is not in a request is closed after ``[web] keep_alive_timeout``, and
one slow to send its head too, so counting requests bounds the connections that do work
(a live page's event stream is one). Over the cap: 503 with Retry-After and the
connection closed.

Must not: look inside bodies.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_FORM = 16 * 1024  # sign-in and sign-out: a token, an address, a password
SMALL_PATHS = frozenset({"/signin", "/signout"})
MAX_TARGET = 8 * 1024  # bytes of path and query
MAX_HEAD = 32 * 1024  # bytes of header fields (cookies, long URLs); Hypercorn's cap too
RETRY_AFTER = "5"  # seconds, on a 503 for too many requests at once


class BodyTooLarge(Exception):
    """A chunked body passed its cap while it was being read."""


class RequestLimits:
    def __init__(self, app: ASGIApp, *, max_message_size: int) -> None:
        self.app = app
        # urlencoded text can take three bytes for one (%XX), plus the other fields
        self.large = max_message_size * 3 + SMALL_FORM

    def cap_for(self, path: str) -> int:
        return SMALL_FORM if path in SMALL_PATHS else self.large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) > MAX_TARGET:
            await PlainTextResponse("URI too long", status_code=414)(scope, receive, send)
            return
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > MAX_HEAD:
            too_big = PlainTextResponse(
                "Request header fields too large",
                status_code=431,
                headers={"connection": "close"},
            )
            await too_big(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        # The unread body makes the connection unusable: say so (RFC 9112 §9.6), or a
        # client would send its next request on a connection about to close.
        too_large = PlainTextResponse(
            "Request too large", status_code=413, headers={"connection": "close"}
        )
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = cap + 1
                if declared > cap:
                    await too_large(scope, receive, send)
                    return
        seen = 0
        started = False
        # A request with a body the page answered without reading it all (a refusal,
        # a redirect to sign-in): the connection cannot carry another request, and
        # Hypercorn closes it; the answer says so (RFC 9112 §9.6), or a client would
        # send its next request on it and see the connection drop.
        body_done = not any(
            name == b"transfer-encoding" or (name == b"content-length" and value != b"0")
            for name, value in scope["headers"]
        )

        async def counted_receive() -> Message:
            nonlocal seen, body_done
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge()
                if not message.get("more_body", False):
                    body_done = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body_done:
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(scope, receive, send)


class InFlight:
    """At most `total` requests at once, and `per_ip` from one client address (the one
    `forwarded.TrustedProxies` settled on)."""

    def __init__(self, app: ASGIApp, *, total: int, per_ip: int) -> None:
        self.app = app
        self.total = total
        self.per_ip = per_ip
        self.active = 0
        self._by_ip: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ip = client[0] if client else ""
        held = self._by_ip.get(ip, 0)
        if self.active >= self.total or held >= self.per_ip:
            busy = PlainTextResponse(
                "Too many requests at once; try again shortly",
                status_code=503,
                headers={"retry-after": RETRY_AFTER, "connection": "close"},
            )
            await busy(scope, receive, send)
            return
        self.active += 1
        self._by_ip[ip] = held + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            left = self._by_ip[ip] - 1
            if left:
                self._by_ip[ip] = left
            else:
                del self._by_ip[ip]
