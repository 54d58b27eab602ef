"""A cap on request bodies, enforced before any page reads one.

Starlette reads a whole form into memory, and the sign-in page reads its form before
anyone is signed in: without a cap, one anonymous request could hold gigabytes. Each
path has a cap (`RequestLimits.cap_for`): a few kilobytes for the forms that only carry
a token and credentials, and for writing mail what the SMTP size limit allows after
form encoding. A declared Content-Length over the cap is answered 413 at once; a body
without one (chunked) is counted as it arrives and cut off at the cap.

Must not: look inside bodies.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SMALL_FORM = 16 * 1024  # sign-in and sign-out: a token, an address, a password
SMALL_PATHS = frozenset({"/signin", "/signout"})


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

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large(scope, receive, send)
