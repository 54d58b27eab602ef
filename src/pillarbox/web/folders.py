"""The folder page: the account's folders with unread counts, and one folder's messages.

The folder is named in the query string (``/folder?f=INBOX&page=2``) and resolved within
the signed-in account only (`AccountMailboxes.find`: canonical names, never an id from
the browser); a name the account does not have is 404. Paging and rows: `listing`; the
sidebar: `folder_list`; actions on messages: `actions`; the manage page: `folder_admin`.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.web import actions, folder_admin, listing, threads_view
from pillarbox.web.context import WebContext
from pillarbox.web.folder_list import sidebar


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def home(request: Request) -> Response:
        await ctx.signed_in(request)
        return RedirectResponse("/folder?f=INBOX", status_code=303)

    async def folder(request: Request) -> Response:
        session = await ctx.signed_in(request)
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
        folders = await sidebar(mailboxes, shown=(page.mailbox.id, page.messages, page.unseen))
        notice, notice_error = _notice(request.query_params)
        return ctx.render(
            request,
            "folder.html",
            session,
            folders=folders,
            page=page,
            threads=threads,
            notice=notice,
            notice_error=notice_error,
        )

    return [
        Route("/", home, methods=["GET"]),
        Route("/folder", folder, methods=["GET"]),
        *actions.routes(ctx),
        *folder_admin.routes(ctx),
    ]


def _notice(params: Mapping[str, str]) -> tuple[str, bool]:
    sent = params.get("sent")
    if sent == "local":
        return "Message sent.", False
    if sent == "queued":
        return "Message sent; copies for other domains are queued for delivery.", False
    return actions.notice(params)
