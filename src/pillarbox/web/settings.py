"""The Settings pages: password, POP3 download policy, identities; fetch sources in
`settings_fetch`.

Every rule is a service's, so the webmail refuses what the CLI and the mail protocols
refuse, in the same words:
  * The current password is checked by `AuthService.authenticate`, the call IMAP LOGIN
    and the sign-in page make, so a wrong one counts in the same per-IP and per-account
    slow-down (`account_throttle`): the settings page is no side door for guessing. The
    new one passes `accounts.check_password` (length, common passwords) and is hashed
    with argon2id by `AccountService.set_password`. The account's other webmail
    sessions end at once (whoever signed in with the old password is out), this one
    stays, and the page says so.
  * The POP3 policy is `AccountService.set_pop_policy`, the options of `pillarbox user
    pop`.
  * Identities are `services.identities`: only the account's own address and aliases
    that deliver to it.

Pages answer a successful POST with a redirect to `/settings?done=KEY` (a reload does
not post again); the notice is looked up by key, so no text from the URL reaches the
page. A refused form is shown again with the reason beside it (400).

Must not: touch the store, or show a password back.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.model import PopOnRetrieve, PopScope
from pillarbox.services.errors import AccountError, AuthFailed
from pillarbox.web import settings_fetch
from pillarbox.web.context import SignInNeeded, WebContext, client_ip, is_loopback, is_tls
from pillarbox.web.sessions import WebSession
from pillarbox.web.settings_forms import number, text, whole_number

MAX_PASSWORD = 1024  # as sign-in: longer ones are refused before any hashing

NOTICES = {
    "password": "Password changed. Your other webmail sessions have been signed out;"
    " mail apps need the new password too.",
    "pop": "POP3 download policy saved.",
    "identity": "Identity saved.",
    "identity-removed": "Identity removed.",
    **settings_fetch.NOTICES,
}

POP_ON_RETRIEVE = [
    (PopOnRetrieve.DELETE, "Delete it here (the POP3 standard)"),
    (PopOnRetrieve.KEEP, "Keep it in the Inbox, hidden from later POP3 downloads"),
    (PopOnRetrieve.MARK_READ, "Keep it, mark it read, hide it from POP3"),
    (PopOnRetrieve.ARCHIVE, "Move it to Archive"),
]
POP_SCOPE = [
    (PopScope.ALL, "All mail in the Inbox"),
    (PopScope.FROM_NOW, "Only mail that arrives after you save this"),
]


def routes(ctx: WebContext) -> list[BaseRoute]:
    services = ctx.services

    async def page(
        request: Request,
        session: WebSession,
        *,
        errors: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        """The whole settings page, from what the services hold now."""
        try:
            account = await services.accounts.get_user(session.account.address)
        except AccountError:  # the account was removed while signed in
            await ctx.sessions.end(session.id)
            raise SignInNeeded("/") from None
        session.account = account
        done = request.query_params.get("done", "")
        notice = NOTICES.get(done, "")
        if done == "fetched":
            n = whole_number(request.query_params.get("n", "")) or 0
            notice = f"Fetched: {n} new message{'' if n == 1 else 's'}."
        return ctx.render(
            request,
            "settings.html",
            session,
            status_code=status,
            account=account,
            notice=notice,
            errors=errors or {},
            pop_on_retrieve=POP_ON_RETRIEVE,
            pop_scope=POP_SCOPE,
            identities=await services.identities.identities(account),
            addresses=await services.identities.addresses(account),
            sources=await services.fetch_sources.list(account.address),
        )

    def done(key: str, anchor: str) -> Response:
        return RedirectResponse(f"/settings?done={key}{anchor}", status_code=303)

    async def settings_get(request: Request) -> Response:
        session = await ctx.signed_in(request)
        return await page(request, session)

    async def password_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        current, new, again = text(form, "current"), text(form, "new"), text(form, "again")

        async def refused(why: str, status: int = 400) -> Response:
            return await page(request, session, errors={"password": why}, status=status)

        ip = client_ip(request)
        auth = services.auth
        if not auth.plaintext_allowed(tls=is_tls(request), loopback=is_loopback(ip)):
            # RFC 8314 §3: no password over an unencrypted connection.
            return await refused("Changing the password needs an HTTPS connection.", 403)
        if max(len(current), len(new), len(again)) > MAX_PASSWORD:
            return await refused(f"Passwords are at most {MAX_PASSWORD} characters.")
        try:
            # The sign-in check itself: failures count in the same slow-down.
            await auth.authenticate(session.account.address, current, ip)
        except AuthFailed:
            return await refused("The current password is wrong.", 401)
        if new != again:
            return await refused("The two new passwords differ.")
        if new == current:
            return await refused("The new password is the same as the current one.")
        try:
            await services.accounts.set_password(session.account.address, new)
        except AccountError as exc:
            return await refused(f"New password refused: {exc}.")
        for other in await ctx.sessions.end_others(session.account.id, keep=session.id):
            await ctx.streams.end_streams(other)
        return done("password", "#password")

    async def pop_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        try:
            on_retrieve = PopOnRetrieve(text(form, "on_retrieve"))
            scope = PopScope(text(form, "scope"))
        except ValueError:
            return await page(
                request, session, errors={"pop": "Choose one of the options."}, status=400
            )
        await services.accounts.set_pop_policy(session.account.address, on_retrieve, scope)
        return done("pop", "#pop")

    async def identity_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        try:
            await services.identities.save(
                session.account,
                number(form, "id"),
                text(form, "address"),
                text(form, "name"),
                text(form, "signature"),
            )
        except AccountError as exc:
            return await page(request, session, errors={"identities": f"{exc}."}, status=400)
        return done("identity", "#identities")

    async def identity_remove(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        try:
            await services.identities.remove(session.account, number(form, "id"))
        except AccountError as exc:
            return await page(request, session, errors={"identities": f"{exc}."}, status=400)
        return done("identity-removed", "#identities")

    return [
        Route("/settings", settings_get, methods=["GET"]),
        Route("/settings/password", password_post, methods=["POST"]),
        Route("/settings/pop", pop_post, methods=["POST"]),
        Route("/settings/identity", identity_post, methods=["POST"]),
        Route("/settings/identity/remove", identity_remove, methods=["POST"]),
        *settings_fetch.routes(ctx, page),
    ]
