"""Reading a message: the message page, its HTML body frame, downloads and the source.

A message is named by folder, UIDVALIDITY and UID in the query string. The folder is
resolved by name within the signed-in account (`AccountMailboxes.find`), and the UID is
looked up only in that mailbox (`SelectedMailbox.of_messages`), so changing any of them
in a URL reaches, at most, another message of the same account; one of someone else's
gives 404, the same as one that does not exist. A UIDVALIDITY that changed means the
UID may now name another message (RFC 9051 §2.3.1.1): 404 too.

Opening the page reads the message as IMAP ``FETCH BODY[]`` does, through the same
service, which sets ``\\Seen`` and publishes the change, so IMAP sessions see it at once
(RFC 9051 §6.4.5: a non-PEEK body fetch sets \\Seen). A browser's prefetch or another
site's link (Sec-Fetch-Site cross-site) reads the message without marking it. The
"verified sender" mark is our own MX's verdict at arrival (`services.sender_verdict`).

The HTML body is served from its own URL, cleaned (`html_clean`), under `frame_csp`,
and shown in ``<iframe sandbox>`` with neither allow-scripts nor allow-same-origin: the
frame has an opaque origin, cannot run script, cannot reach this site's cookies or
pages, and may load only images: ``data:`` ones always (inline ``cid:`` images are
made into them here, so the frame needs no cookie to show them), remote ones only when
the reader allowed them — for this message (``images=1`` on the page's and the frame's
URL: nothing is stored) or for its sender (`services.image_senders`, a POST).

Attachments are always served as ``application/octet-stream`` with
``Content-Disposition: attachment`` (RFC 6266) and a file name made safe
(`filenames.safe_filename`), so no attachment is ever rendered by the browser in this
site's origin; "show original" is the stored message as text/plain under a sandbox
CSP. Both are streamed from the stored file (`services.fetch_stream`, as IMAP streams
large sections), so memory does not grow with the size of what is downloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from pillarbox.model import Mailbox
from pillarbox.services.fetch_stream import SectionStream
from pillarbox.services.fetching import WHOLE_MESSAGE, FetchedMessage, Section
from pillarbox.services.image_senders import ImageSenders
from pillarbox.services.selected import SelectedMailbox
from pillarbox.services.sender_verdict import verified_sender
from pillarbox.web.context import WebContext
from pillarbox.web.filenames import content_disposition
from pillarbox.web.html_clean import CleanHtml, clean_html, linkify
from pillarbox.web.mime_view import MessageView, frame_source, message_view, part_info
from pillarbox.web.sessions import WebSession

_FRAME_CSP = (
    "default-src 'none'; img-src {images}; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)
MAIL_FRAME_CSP = _FRAME_CSP.format(images="data:")
REMOTE_FRAME_CSP = _FRAME_CSP.format(images="data: https: http:")
SOURCE_CSP = "default-src 'none'; sandbox"  # the raw source: text, never a document
MAX_PART_DEPTH = 32
WORK_IN_THREAD = 256 * 1024  # bytes of message or markup handled off the event loop


def frame_csp(remote_images: bool) -> str:
    """The frame's policy: images from ``data:`` only, or from anywhere once the reader
    allowed remote images; never script, never another frame, form or base."""
    return REMOTE_FRAME_CSP if remote_images else MAIL_FRAME_CSP


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


def _images_allowed(request: Request) -> bool:
    return request.query_params.get("images") == "1"


async def _message(
    ctx: WebContext,
    session: WebSession,
    query: Mapping[str, str],
    sections: list[Section],
    *,
    set_seen: bool,
    stream: bool = False,
) -> tuple[Mailbox, FetchedMessage]:
    """The message `query` (f, v, uid) names, with `sections` read (404 if none); with
    `stream`, large ones come in `FetchedMessage.streams`."""
    uid = _int(query.get("uid"))
    mailbox = await ctx.mailboxes(session).find(query.get("f", ""))
    if mailbox is None or mailbox.uidvalidity != _int(query.get("v")):
        raise HTTPException(404)
    selected = SelectedMailbox.of_messages(ctx.services.store, mailbox, [uid], read_only=False)
    async for batch in selected.fetch([uid], sections, set_seen=set_seen, stream=stream):
        for fetched in batch:
            if any(not fetched.sections.get(s) for s in sections if s.kind == "MIME"):
                raise HTTPException(404)  # no such part: it has no header
            return mailbox, fetched
    raise HTTPException(404)


async def _off_loop_if_big(size: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if size > WORK_IN_THREAD:
        return await asyncio.to_thread(fn, *args, **kwargs)
    return fn(*args, **kwargs)


async def _cleaned_frame(
    data: bytes, part: tuple[int, ...], *, remote_images: bool
) -> CleanHtml | None:
    def work() -> CleanHtml | None:
        source = frame_source(data, part)
        if source is None:
            return None
        return clean_html(source.markup, remote_images=remote_images, inline=source.inline)

    result: CleanHtml | None = await _off_loop_if_big(len(data), work)
    return result


class _SectionResponse(StreamingResponse):
    """A section streamed from its blob, which is closed however the response ends
    (sent, client gone, cancelled)."""

    def __init__(self, stream: SectionStream, length: int, headers: dict[str, str]) -> None:
        super().__init__(stream.chunks(), headers={**headers, "content-length": str(length)})
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._stream.close()


async def _section_response(
    fetched: FetchedMessage, section: Section, headers: dict[str, str]
) -> Response:
    """The section's bytes: streamed from the blob when large (`fetch_stream`), else
    from the memory they were read into."""
    large = fetched.streams.get(section)
    if large is None:
        return Response(fetched.sections.get(section, b""), headers=headers)
    stream = await large.open()  # before any of the answer: a vanished message is a 404
    return _SectionResponse(stream, large.length, headers)


async def _page_values(
    ctx: WebContext, session: WebSession, request: Request, data: bytes, view: MessageView
) -> dict[str, Any]:
    """The verdict and the remote-images state: how many the shown HTML has (counted by
    cleaning it: the count is of what the frame would load), whether they are shown,
    and whether because the sender is trusted."""
    remote, show, trusted = 0, False, False
    if view.html_part is not None:
        cleaned: CleanHtml = await _off_loop_if_big(len(view.html_text), clean_html, view.html_text)
        remote = cleaned.remote_images
    if remote and view.sender_address:  # the list is asked only when it matters
        senders = ImageSenders(ctx.services.store, session.account.id)
        trusted = await senders.trusts(view.sender_address)
    show = bool(remote) and (_images_allowed(request) or trusted)
    return {
        "verified": verified_sender(data, ctx.services.hostname),
        "remote_images": remote,
        "show_images": show,
        "trusted_sender": trusted,
    }


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def read(request: Request) -> Response:
        session = await ctx.signed_in(request)
        mailbox, fetched = await _message(
            ctx, session, request.query_params, [WHOLE_MESSAGE], set_seen=_marks_seen(request)
        )
        data = fetched.sections[WHOLE_MESSAGE]
        view: MessageView = await _off_loop_if_big(len(data), message_view, data)
        return ctx.render(
            request,
            "message.html",
            session,
            mailbox=mailbox,
            uid=fetched.info.uid,
            flags=fetched.flags,
            view=view,
            texts=[linkify(text) for text in view.texts],
            **await _page_values(ctx, session, request, data, view),
        )

    async def body(request: Request) -> Response:
        session = await ctx.signed_in(request)
        part = _part(request.query_params.get("part"))
        _mailbox, fetched = await _message(
            ctx, session, request.query_params, [WHOLE_MESSAGE], set_seen=False
        )
        remote = _images_allowed(request)
        cleaned = await _cleaned_frame(fetched.sections[WHOLE_MESSAGE], part, remote_images=remote)
        if cleaned is None:
            raise HTTPException(404)
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8">'
            '<meta name="color-scheme" content="light">'
            f"</head><body>{cleaned.markup}</body></html>"
        )
        return HTMLResponse(
            page,
            headers={
                "content-security-policy": frame_csp(remote),
                "x-frame-options": "SAMEORIGIN",
            },
        )

    async def attachment(request: Request) -> Response:
        session = await ctx.signed_in(request)
        part = _part(request.query_params.get("part"))
        content, header = Section(part, decode=True), Section(part, "MIME")
        _mailbox, fetched = await _message(
            ctx, session, request.query_params, [content, header], set_seen=False, stream=True
        )
        info = part_info(fetched.sections[header])
        disposition = content_disposition(info.filename, info.mime_type)
        return await _section_response(
            fetched,
            content,
            {"content-type": "application/octet-stream", "content-disposition": disposition},
        )

    async def source(request: Request) -> Response:
        session = await ctx.signed_in(request)
        _mailbox, fetched = await _message(
            ctx, session, request.query_params, [WHOLE_MESSAGE], set_seen=False, stream=True
        )
        return await _section_response(
            fetched,
            WHOLE_MESSAGE,
            {
                "content-type": "text/plain; charset=utf-8",
                "content-disposition": "inline",
                "content-security-policy": SOURCE_CSP,
            },
        )

    async def trust_images(request: Request) -> Response:
        """Always (or, with ``forget``, no longer) show this message's sender's images,
        then back to the message."""
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        where = {k: str(form.get(k, "")) for k in ("f", "v", "uid")}
        header = Section((), "HEADER")
        _mailbox, fetched = await _message(ctx, session, where, [header], set_seen=False)
        sender = message_view(fetched.sections[header]).sender_address
        senders = ImageSenders(ctx.services.store, session.account.id)
        if form.get("forget"):
            await senders.forget(sender)
        elif sender:
            await senders.trust(sender)
        return RedirectResponse("/read?" + urlencode(where), status_code=303)

    return [
        Route("/read", read, methods=["GET"]),
        Route("/read/body", body, methods=["GET"]),
        Route("/read/attachment", attachment, methods=["GET"]),
        Route("/read/source", source, methods=["GET"]),
        Route("/read/images", trust_images, methods=["POST"]),
    ]
