"""The folder page: the account's folders with unread counts, and one folder's messages.

The folder is named in the query string (``/folder?f=INBOX&page=2``) and resolved within
the signed-in account only (`AccountMailboxes.find`: canonical names, never an id from
the browser); a name the account does not have is 404. Paging and rows: `listing`.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.web import listing, threads_view
from pillarbox.web.context import WebContext


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def home(request: Request) -> Response:
        ctx.signed_in(request)
        return RedirectResponse("/folder?f=INBOX", status_code=303)

    async def folder(request: Request) -> Response:
        session = ctx.signed_in(request)
        mailboxes = ctx.mailboxes(session)
        mailbox = await mailboxes.find(request.query_params.get("f", "INBOX"))
        if mailbox is None:
            raise HTTPException(404, "No such folder")
        params = request.query_params
        number = listing.query_int(params.get("page")) or 1
        threads = None
        if params.get("view") == "threads":
            open_thread = listing.query_int(params.get("t"))
            threads = await threads_view.page(ctx.services, mailbox, number, open_thread)
        before, after = (
            listing.query_int(params.get("before")),
            listing.query_int(params.get("after")),
        )
        page = await listing.page(
            ctx.services, mailbox, 1 if threads else number, before=before, after=after
        )
        return ctx.render(
            request,
            "folder.html",
            session,
            folders=await listing.folders(mailboxes, page),
            page=page,
            threads=threads,
            notice=_notice(request.query_params.get("sent")),
        )

    return [
        Route("/", home, methods=["GET"]),
        Route("/folder", folder, methods=["GET"]),
    ]


def _notice(sent: str | None) -> str:
    if sent == "local":
        return "Message sent."
    if sent == "queued":
        return "Message sent; copies for other domains are queued for delivery."
    return ""
