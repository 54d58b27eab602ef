"""What every webmail page needs: the services, the sessions, templates and the checks.

`WebContext` is built once per running app (`routes.make_app`) and handed to each page
module. Its checks are the webmail's whole access policy, so that no page can forget
one: `signed_in` answers a request without a live session by sending the browser to
sign-in; `check_csrf` refuses a state-changing request that does not carry the session's
token or that another site sent (Origin / Sec-Fetch-Site); pages reach mail only through
`mailboxes` (the signed-in account's `AccountMailboxes`), so no URL can name another
account's mailbox.

Must not: touch the store except through services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pillarbox.services.context import Services
from pillarbox.services.mailbox import AccountMailboxes
from pillarbox.web.live_streams import Streams
from pillarbox.web.sessions import COOKIE, SessionStore, WebSession, same_token

TEMPLATES = Path(__file__).parent / "templates"  # package data (pyproject.toml)
LIVE_STATE = "pillarbox.live_state"  # scope["state"] key: the account state (web.live)


class SignInNeeded(Exception):
    """No live session: the browser goes to sign-in, then back to `next`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def is_loopback(ip: str) -> bool:
    try:
        return ip_address(ip).is_loopback
    except ValueError:
        return False


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlencode_query"] = lambda params: urlencode(params)
    return env


@dataclass
class WebContext:
    services: Services
    max_message_size: int  # the SMTP limit (smtp.max_message_size) applies here too
    max_recipients: int  # and so does smtp.max_recipients
    sessions: SessionStore = field(default_factory=SessionStore)
    streams: Streams = field(default_factory=Streams)  # open live-update streams
    templates: Environment = field(default_factory=_environment)

    # --- responses ----------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        session: WebSession | None = None,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            request=request,
            session=session,
            csrf=session.csrf if session is not None else "",
            live_state=request.scope.get("state", {}).get(LIVE_STATE, ""),
            **values,
        )
        return HTMLResponse(page, status_code=status_code)

    # --- checks -------------------------------------------------------------------------

    async def signed_in(self, request: Request) -> WebSession:
        session = await self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise SignInNeeded(return_to(request))
        return session

    def mailboxes(self, session: WebSession) -> AccountMailboxes:
        return AccountMailboxes(self.services.store, session.account.id)

    @staticmethod
    def check_origin(request: Request) -> None:
        """Refuse a request another site made the browser send (403). Browsers send
        Sec-Fetch-Site and, on POST, Origin; either naming another site is enough.
        Origin is compared by host and port only: behind a TLS proxy the browser says
        https while this server sees http, and another site has another host anyway."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise HTTPException(403, "Cross-site request refused")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.url.netloc:
            raise HTTPException(403, "Cross-site request refused")

    async def check_csrf(self, request: Request, session: WebSession) -> FormData:
        """The request's form, once its CSRF token matched the session's (else 403)."""
        self.check_origin(request)
        form = await request.form()
        token = form.get("csrf")
        if not same_token(token if isinstance(token, str) else None, session.csrf):
            raise HTTPException(403, "Missing or wrong form token; reload the page")
        return form


def return_to(request: Request) -> str:
    """Where to come back to after signing in again: the page asked for; for a form
    sent after the session ended (a POST cannot be replayed: its token belonged to
    the old session), the page the form was on, named by our own Referer (only a path
    on this site; with no usable Referer, the start page). The form's text survives
    in the browser (`app.js` keeps it until the page is back)."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        return target
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.url.netloc or not referer.path:
        return "/"
    return safe_next(referer.path + ("?" + referer.query if referer.query else ""))


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    """HttpOnly (scripts never see it), SameSite=Lax (not sent on another site's
    POST), Secure when the request came over TLS (never sent in clear after that)."""
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="lax",
        secure=is_tls(request),
        path="/",
    )


def sign_in_redirect(next_url: str) -> RedirectResponse:
    return RedirectResponse("/signin?" + urlencode({"next": next_url}), status_code=303)


def safe_next(value: str | None) -> str:
    """Only a path on this site: `next=//evil.example` or a URL must not send the
    browser elsewhere after sign-in (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
