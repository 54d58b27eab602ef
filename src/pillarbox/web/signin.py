"""Sign-in and sign-out pages.

The password is checked by `services.auth.AuthService.authenticate`, the same call IMAP
LOGIN, POP3 PASS and SMTP AUTH make: the same argon2id check, the same answer for an
unknown address and a wrong password, and the same per-IP delay after failures, so a
guesser gains nothing by moving between the webmail and the mail protocols. Whether a
password may travel over this connection at all is the same rule too
(`plaintext_allowed`: TLS, or loopback when configured).

The sign-in form carries a token that must match a cookie set with the form (double
submit), so another site cannot sign a browser into an account of its choosing. A
successful sign-in always starts a new session id.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.services.errors import AuthFailed, TempFailure
from pillarbox.web.context import (
    WebContext,
    client_ip,
    is_loopback,
    is_tls,
    safe_next,
    set_session_cookie,
)
from pillarbox.web.sessions import COOKIE, SIGNIN_COOKIE, new_token, same_token

log = logging.getLogger("pillarbox.web")

MAX_FIELD = 1024  # longer addresses or passwords are refused before any hashing


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def form_page(
        request: Request, *, error: str = "", address: str = "", status: int = 200
    ) -> Response:
        token = new_token()
        response = ctx.render(
            request,
            "signin.html",
            status_code=status,
            signin_token=token,
            error=error,
            address=address,
            next=safe_next(request.query_params.get("next")),
            # The browser still holds a session id that names nothing now: it expired
            # (or the server restarted), so the person is told why they are here.
            ended=bool(request.cookies.get(COOKIE))
            and await ctx.sessions.peek(request.cookies.get(COOKIE)) is None,
        )
        response.set_cookie(
            SIGNIN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=is_tls(request),
            path="/signin",
        )
        return response

    async def signin_get(request: Request) -> Response:
        return await form_page(request)

    async def signin_post(request: Request) -> Response:
        ctx.check_origin(request)
        form = await request.form()
        token = form.get("signin_token")
        if not same_token(
            token if isinstance(token, str) else None, request.cookies.get(SIGNIN_COOKIE, "")
        ) or not request.cookies.get(SIGNIN_COOKIE):
            raise HTTPException(403, "Missing or wrong form token; reload the page")
        address = str(form.get("address", ""))[:MAX_FIELD].strip()
        password = str(form.get("password", ""))
        if len(password) > MAX_FIELD:
            return await form_page(request, error="Wrong address or password.", status=401)
        ip = client_ip(request)
        auth = ctx.services.auth
        if not auth.plaintext_allowed(tls=is_tls(request), loopback=is_loopback(ip)):
            # RFC 8314 §3: no password over an unencrypted connection.
            return await form_page(request, error="Sign-in needs an HTTPS connection.", status=403)
        try:
            account = await auth.authenticate(address, password, ip)
        except AuthFailed:
            return await form_page(
                request, error="Wrong address or password.", address=address, status=401
            )
        except TempFailure:
            return await form_page(
                request,
                error="Sign-in is unavailable for a moment; please try again.",
                address=address,
                status=503,
            )
        session = await ctx.sessions.create(account)
        log.info("webmail sign-in %s from %s", account.address, ip)
        next_url = safe_next(str(form.get("next", "/")))
        response = RedirectResponse(next_url, status_code=303)
        set_session_cookie(response, request, session.id)
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    async def signout(request: Request) -> Response:
        session = await ctx.signed_in(request)
        await ctx.check_csrf(request, session)
        await ctx.sessions.end(session.id)
        await ctx.streams.end_streams(session.id)
        log.info("webmail sign-out %s from %s", session.account.address, client_ip(request))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response

    return [
        Route("/signin", signin_get, methods=["GET"]),
        Route("/signin", signin_post, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
    ]
