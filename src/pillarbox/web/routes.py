"""The webmail application: every route, the middleware and the error pages.

`make_app` builds one Starlette application over the running services; `web.listener`
serves it. Errors become pages here, in one table: no live session sends the browser
to sign-in and back; `HTTPException` (403, 404) and the services' errors get a short
page that says what happened without internals; anything else is logged with its
traceback by Starlette and answered with a bare 500.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from pillarbox.config import Config
from pillarbox.services.context import Services
from pillarbox.services.errors import Rejected, TempFailure
from pillarbox.services.mailbox import NoSuchMailbox
from pillarbox.services.web_sessions import WebSessionTable
from pillarbox.web import compose, folders, live, reading, search, settings, signin, suggest
from pillarbox.web.context import SignInNeeded, WebContext, sign_in_redirect
from pillarbox.web.forwarded import TrustedProxies
from pillarbox.web.headers import SecurityHeaders
from pillarbox.web.limits import InFlight, RequestLimits
from pillarbox.web.sessions import SessionStore

STATIC = Path(__file__).parent / "static"  # package data (pyproject.toml)


def make_app(services: Services, config: Config, ctx: WebContext | None = None) -> Starlette:
    """The application; `ctx` (made here if not given) is what the listener keeps to
    end the live streams when it stops."""
    if ctx is None:
        ctx = make_context(services, config)

    def error_page(request: Request, status: int, text: str) -> Response:
        return ctx.render(request, "error.html", status_code=status, status=status, text=text)

    async def on_sign_in_needed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInNeeded)
        return sign_in_redirect(exc.next_url)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        texts = {403: "Refused.", 404: "Not found.", 405: "Method not allowed."}
        text = exc.detail if exc.detail and exc.status_code == 403 else ""
        return error_page(request, exc.status_code, text or texts.get(exc.status_code, "Error."))

    async def on_no_mailbox(request: Request, exc: Exception) -> Response:
        return error_page(request, 404, "Not found.")

    async def on_rejected(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Rejected)
        return error_page(request, 400, exc.text)

    async def on_temp_failure(request: Request, exc: Exception) -> Response:
        return error_page(request, 503, "Temporarily unavailable; try again shortly.")

    routes: list[BaseRoute] = [
        *signin.routes(ctx),
        *folders.routes(ctx),
        *reading.routes(ctx),
        *compose.routes(ctx),
        *live.routes(ctx),
        *settings.routes(ctx),
        *search.routes(ctx),
        *suggest.routes(ctx),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        # Outermost first: the client is settled before anything counts or checks it;
        # the 413, 414 and 503 answers carry the security headers too.
        middleware=[
            Middleware(TrustedProxies, proxies=config.web.trusted_proxies),
            Middleware(SecurityHeaders),
            Middleware(
                InFlight,
                total=config.limits.max_connections,
                per_ip=config.limits.max_connections_per_ip,
            ),
            Middleware(RequestLimits, max_message_size=config.smtp.max_message_size),
            Middleware(live.LiveState, ctx=ctx),
        ],
        exception_handlers={
            SignInNeeded: on_sign_in_needed,
            HTTPException: on_http_error,
            NoSuchMailbox: on_no_mailbox,
            Rejected: on_rejected,
            TempFailure: on_temp_failure,
        },
    )


def make_context(services: Services, config: Config) -> WebContext:
    return WebContext(
        services,
        max_message_size=config.smtp.max_message_size,
        max_recipients=config.smtp.max_recipients,
        # In the store: shared by the nodes on PostgreSQL (web.sessions).
        sessions=SessionStore(table=WebSessionTable(services.store)),
    )
