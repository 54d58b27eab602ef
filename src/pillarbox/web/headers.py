"""Security headers on every webmail response, as one ASGI middleware.

Every page gets a Content-Security-Policy that allows scripts, styles and images only
from this origin (no inline script, so an injected ``<script>`` or ``onerror=`` in a
page never runs), ``frame-ancestors 'none'`` (no other page may frame ours:
clickjacking), ``nosniff`` (a download is never sniffed into HTML), ``Referrer-Policy:
same-origin`` (message URLs never leak to another site; not ``no-referrer``, under which
browsers send ``Origin: null`` on our own form posts (Fetch §3.1) and the Origin check
refuses them; our Referer also brings a form sent after the session ended back to its
page, `context.return_to`) and ``Cache-Control: no-store`` (mail is not left in shared
caches or the back-button cache after sign-out). A response that sets its own
Content-Security-Policy keeps it: the frame that shows an HTML mail body
(`reading.MAIL_FRAME_CSP`) is stricter still and may be framed by our own pages only.

Must not: decide anything about a request; it only adds headers.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

DEFAULT_HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",  # for browsers without CSP frame-ancestors
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """Adds `DEFAULT_HEADERS` that a response did not set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULT_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
