"""Reading a message: the message page, its HTML body frame, and attachment downloads.

A message is named by folder, UIDVALIDITY and UID in the query string. The folder is
resolved by name within the signed-in account (`AccountMailboxes.find`), and the UID is
looked up only in that mailbox (`SelectedMailbox.of_messages`), so changing any of them
in a URL reaches, at most, another message of the same account; one of someone else's
gives 404, the same as one that does not exist. A UIDVALIDITY that changed means the
UID may now name another message (RFC 9051 §2.3.1.1): 404 too.

Opening the page reads the message as IMAP ``FETCH BODY[]`` does, through the same
service, which sets ``\\Seen`` and publishes the change, so IMAP sessions see it at once
(RFC 9051 §6.4.5: a non-PEEK body fetch sets \\Seen). A browser's prefetch or another
site's link (Sec-Fetch-Site cross-site) reads the message without marking it.

The HTML body is served from its own URL, cleaned (`html_clean`), under
`MAIL_FRAME_CSP`, and shown in ``<iframe sandbox>`` with neither allow-scripts nor
allow-same-origin: the frame has an opaque origin, cannot run script, cannot reach this
site's cookies or pages, and may load nothing. Attachments are always served as
``application/octet-stream`` with ``Content-Disposition: attachment`` (RFC 6266) and a
file name made safe (`filenames.safe_filename`), so no attachment is ever rendered by
the browser in this site's origin.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.message.charsets import decode_bytes
from pillarbox.model import Mailbox
from pillarbox.services.fetching import WHOLE_MESSAGE, FetchedMessage, Section
from pillarbox.services.selected import SelectedMailbox
from pillarbox.web.context import WebContext
from pillarbox.web.filenames import content_disposition
from pillarbox.web.html_clean import clean_html, linkify
from pillarbox.web.mime_view import message_view, part_info
from pillarbox.web.sessions import WebSession

MAIL_FRAME_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
MAX_PART_DEPTH = 32
WORK_IN_THREAD = 256 * 1024  # bytes of message or markup handled off the event loop


def _int(value: str | None) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise HTTPException(404) from None
    if not 0 < number < 2**32:
        raise HTTPException(404)
    return number


def _part(value: str | None) -> tuple[int, ...]:
    numbers = (value or "").split(".")
    if len(numbers) > MAX_PART_DEPTH:
        raise HTTPException(404)
    return tuple(_int(n) for n in numbers)


def _marks_seen(request: Request) -> bool:
    """Only a person opening the message marks it read: not a cross-site request."""
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


async def _message(
    ctx: WebContext,
    session: WebSession,
    request: Request,
    sections: list[Section],
    *,
    set_seen: bool,
) -> tuple[Mailbox, FetchedMessage]:
    """The message the query string names, with `sections` read (404 if none)."""
    query = request.query_params
    uid = _int(query.get("uid"))
    mailbox = await ctx.mailboxes(session).find(query.get("f", ""))
    if mailbox is None or mailbox.uidvalidity != _int(query.get("v")):
        raise HTTPException(404)
    selected = SelectedMailbox.of_messages(ctx.services.store, mailbox, [uid], read_only=False)
    async for batch in selected.fetch([uid], sections, set_seen=set_seen):
        for fetched in batch:
            if any(not fetched.sections[s] for s in sections if s.kind == "MIME"):
                raise HTTPException(404)  # no such part: it has no header
            return mailbox, fetched
    raise HTTPException(404)


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def read(request: Request) -> Response:
        session = ctx.signed_in(request)
        mailbox, fetched = await _message(
            ctx, session, request, [WHOLE_MESSAGE], set_seen=_marks_seen(request)
        )
        data = fetched.sections[WHOLE_MESSAGE]
        if len(data) > WORK_IN_THREAD:  # walking and decoding a big one: off the loop
            view = await asyncio.to_thread(message_view, data)
        else:
            view = message_view(data)
        return ctx.render(
            request,
            "message.html",
            session,
            mailbox=mailbox,
            uid=fetched.info.uid,
            flags=fetched.flags,
            view=view,
            texts=[linkify(text) for text in view.texts],
        )

    async def body(request: Request) -> Response:
        session = ctx.signed_in(request)
        part = _part(request.query_params.get("part"))
        content, header = Section(part, decode=True), Section(part, "MIME")
        _mailbox, fetched = await _message(ctx, session, request, [content, header], set_seen=False)
        info = part_info(fetched.sections[header])
        markup = decode_bytes(fetched.sections[content], info.charset)
        if len(markup) > WORK_IN_THREAD:
            cleaned = await asyncio.to_thread(clean_html, markup)
        else:
            cleaned = clean_html(markup)
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<meta name="color-scheme" content="light">'
            f"</head><body>{cleaned.markup}</body></html>"
        )
        return HTMLResponse(
            page,
            headers={
                "content-security-policy": MAIL_FRAME_CSP,
                "x-frame-options": "SAMEORIGIN",
            },
        )

    async def attachment(request: Request) -> Response:
        session = ctx.signed_in(request)
        part = _part(request.query_params.get("part"))
        content, header = Section(part, decode=True), Section(part, "MIME")
        _mailbox, fetched = await _message(ctx, session, request, [content, header], set_seen=False)
        info = part_info(fetched.sections[header])
        return Response(
            fetched.sections[content],
            media_type="application/octet-stream",
            headers={"content-disposition": content_disposition(info.filename, info.mime_type)},
        )

    return [
        Route("/read", read, methods=["GET"]),
        Route("/read/body", body, methods=["GET"]),
        Route("/read/attachment", attachment, methods=["GET"]),
    ]
