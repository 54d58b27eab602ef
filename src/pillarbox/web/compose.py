"""Writing and sending mail: new messages, replies, forwards, attachments and drafts.

Sending goes through exactly what an authenticated client on the submission port gets
(RFC 6409): `SubmissionService.check_sender` for the chosen From address (the account's
own address or an alias that delivers to it), `DeliveryService.resolve` for each
recipient (unknown local users refused, other domains queued), and
`SubmissionService.begin` / `finish`, which applies the sender rules to the From field,
adds Message-ID and Date (RFC 6409 §8), delivers local copies, queues the rest for the
outbound runner (DKIM-signed there) and files the Sent copy. The webmail only turns the
form into a message (`message.compose`) and an envelope.

The form is one page for every case. Hidden fields carry what it was started from:
``orig`` (the message replied to or forwarded, by folder, UIDVALIDITY and UID, resolved
again within the account on send), ``in_reply_to``/``references`` (RFC 5322 §3.6.4,
reduced to msg-id tokens on send) and ``draft_uid``/``draft_v`` (the draft's current
version in Drafts). Attachments already on the server (the previous draft version's, a
forwarded message's) are listed with a "keep" checkbox each; new files come as uploads.
A sent reply sets ``\\Answered`` and a sent forward ``$Forwarded`` on the original
through `SelectedMailbox.set_flags`, so open IMAP sessions are told at once.

Drafts are messages in the ``\\Drafts`` mailbox with ``\\Draft`` (RFC 6154): each save
replaces the previous version (RFC 8508 REPLACE, one store transaction), the draft
keeps Bcc and a ``X-Pillarbox-Original`` field (the ``orig`` value) so that a resumed
reply still marks its original, and sending deletes it. A failed send saves the draft
(so uploaded files survive the round trip), keeps the form and says why.

The Received field names the protocol as HTTP or HTTPS, from the IANA "WITH protocol
types" registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from html import escape
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.message import addresses
from pillarbox.message.compose import (
    Attachment,
    compose_message,
    forward_subject,
    forwarded_text,
    quoted_reply,
    reply_subject,
    reply_threading,
)
from pillarbox.message.html_text import html_to_text
from pillarbox.message.message_ids import message_ids
from pillarbox.model import FlagMode
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.delivery import Envelope, Recipient
from pillarbox.services.errors import ServiceError
from pillarbox.services.mailbox import NewMessage, NoSuchMailbox
from pillarbox.services.selected import SelectedMailbox
from pillarbox.web.compose_html import clean_compose_html, has_text, text_to_html
from pillarbox.web.compose_sources import (
    Source,
    address_text,
    attachments_of,
    drafts_mailbox,
    fetch_source,
    header,
    mailboxes_of,
    main_text,
    parsed,
)
from pillarbox.web.context import WebContext, client_ip, is_tls
from pillarbox.web.filenames import safe_filename
from pillarbox.web.senders import sender_choices
from pillarbox.web.sessions import WebSession

FIELDS = (
    "to",
    "cc",
    "bcc",
    "subject",
    "body",
    "html",
    "format",
    "from",
    "in_reply_to",
    "references",
    "orig",
    "draft_uid",
    "draft_v",
)
MODES = {"reply", "replyall", "forward", "forward_attach"}
ORIGINAL_FIELD = "X-Pillarbox-Original"  # in drafts only: what the draft answers
MAX_FILES = 100
MAX_FIELDS = 1000
WORK_IN_THREAD = 256 * 1024  # bytes of message handled off the event loop
T = TypeVar("T")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")


class FormError(Exception):
    """Something in the form to fix; the text is shown above it."""


@dataclass
class ComposeForm:
    """What the page shows and posts: the text fields, and the names of attachments
    already held on the server (index = the "keep" checkbox value)."""

    values: dict[str, str]
    carried: list[str] = field(default_factory=list)


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _mailboxes(value: str, field_name: str) -> list[tuple[str, str]]:
    found = addresses(value)
    for _name, spec in found:
        try:
            normalize_address(spec)
        except InvalidAddress:
            raise FormError(f"{field_name}: {spec!r} is not an email address") from None
    return found


def _original(value: str) -> tuple[str, str, int, int] | None:
    """(mode, folder, uidvalidity, uid) from an ``orig`` field, None if unusable."""
    query = parse_qs(value)
    mode = query.get("mode", [""])[0]
    if mode not in MODES:
        return None
    folder = query.get("f", [""])[0]
    return mode, folder, _int(query.get("v", ["0"])[0]), _int(query.get("uid", ["0"])[0])


def _with_signature(signature: str) -> str:
    return f"\n\n-- \n{signature}\n" if signature else ""


def _blank_values() -> dict[str, str]:
    values = {name: "" for name in FIELDS}
    values["format"] = "plain"
    return values


def _content(values: dict[str, str]) -> tuple[str, str | None]:
    """(text, html or None) of the message the form holds."""
    if values["format"] == "html" and values["html"].strip():
        html = clean_compose_html(values["html"])
        if has_text(html):
            return html_to_text(html), html
        return "", None
    return values["body"], None


def _mime_type(upload: UploadFile) -> str:
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if _MIME_TYPE.match(declared) and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(upload.filename or "")
    return guessed or "application/octet-stream"


def routes(ctx: WebContext) -> list[BaseRoute]:
    services = ctx.services
    limit = ctx.max_message_size

    # --- reading what the form starts from ----------------------------------------------

    async def signature_of(session: WebSession) -> str:
        """The default identity's signature (Settings → Identities), which a new message,
        reply or forward starts with; the first identity is the default."""
        return (await services.identities.identities(session.account))[0].signature

    async def display_names(session: WebSession) -> dict[str, str]:
        """Address → display name of the account's identities (for From: and the chooser)."""
        found = await services.identities.identities(session.account)
        return {i.address: i.display_name for i in found if i.display_name}

    async def source_of(session: WebSession, values: dict[str, str]) -> Source | None:
        """The message whose attachments the form carries: the draft if there is one,
        else the message forwarded."""
        mailboxes = ctx.mailboxes(session)
        if values["draft_uid"]:
            drafts = await drafts_mailbox(mailboxes)
            return await fetch_source(
                mailboxes, drafts.name, _int(values["draft_v"]), _int(values["draft_uid"])
            )
        original = _original(values["orig"])
        if original is not None and original[0] in ("forward", "forward_attach"):
            return await fetch_source(mailboxes, *original[1:])
        return None

    async def carried(session: WebSession, values: dict[str, str]) -> list[Attachment]:
        source = await source_of(session, values)
        if source is None:
            return []
        original = _original(values["orig"])
        if not values["draft_uid"] and original is not None and original[0] == "forward_attach":
            message = await _off_loop(len(source.data), parsed, source.data)
            name = safe_filename((header(message, "Subject") or "message")[:80] + ".eml")
            return [Attachment(name, "message/rfc822", source.data)]
        message = await _off_loop(len(source.data), parsed, source.data)
        return await _off_loop(len(source.data), attachments_of, message, source.data)

    async def started_from(
        session: WebSession, mode: str, folder: str, uidvalidity: int, uid: int
    ) -> ComposeForm:
        """The form of a reply or forward of that message (404 if there is none)."""
        source = await fetch_source(ctx.mailboxes(session), folder, uidvalidity, uid)
        if source is None:
            raise HTTPException(404)
        message = await _off_loop(len(source.data), parsed, source.data)
        text, html = main_text(message)
        values = _blank_values()
        values["orig"] = urlencode({"mode": mode, "f": folder, "v": uidvalidity, "uid": uid})
        subject = header(message, "Subject")
        senders = mailboxes_of(message, "From")
        name = (senders[0][0] or senders[0][1]) if senders else "someone"
        date = header(message, "Date")
        signature = _with_signature(await signature_of(session))
        if mode in ("reply", "replyall"):
            allowed = await services.submission.allowed_senders(session.account)
            to = mailboxes_of(message, "Reply-To") or senders
            if to and all(services.submission.owns(allowed, spec) for _n, spec in to):
                to = mailboxes_of(message, "To")  # a reply to one's own sent message
            cc: list[tuple[str, str]] = []
            if mode == "replyall":
                taken = {spec.lower() for _n, spec in to}
                for pair in mailboxes_of(message, "To", "Cc"):
                    spec = pair[1].lower()
                    if spec in taken or services.submission.owns(allowed, spec):
                        continue
                    taken.add(spec)
                    cc.append(pair)
            values["to"], values["cc"] = address_text(to), address_text(cc)
            values["subject"] = reply_subject(subject)
            values["in_reply_to"], values["references"] = reply_threading(
                header(message, "Message-ID"),
                header(message, "References"),
                header(message, "In-Reply-To"),
            )
            intro = f"On {date}, {name} wrote:" if date else f"{name} wrote:"
            values["body"] = signature + quoted_reply(text, date, name)
            quoted = html if html is not None else text_to_html(text.rstrip("\n"))
            values["html"] = (
                "<div><br></div>"
                + text_to_html(signature.strip("\n")) * bool(signature)
                + f"<div>{escape(intro)}</div><blockquote>{quoted}</blockquote>"
            )
            return ComposeForm(values)
        values["subject"] = forward_subject(subject)
        if mode == "forward":
            fields = [
                ("From", header(message, "From")),
                ("Date", date),
                ("Subject", subject),
                ("To", header(message, "To")),
                ("Cc", header(message, "Cc")),
            ]
            values["body"] = signature + forwarded_text(text, fields)
            if html is None:
                values["html"] = text_to_html(values["body"])
            else:  # the original's own formatting, cleaned, under the same heading
                heading = forwarded_text("", fields).strip("\n")
                values["html"] = text_to_html(signature + "\n\n" + heading) + html
        else:
            values["body"] = signature
            values["html"] = text_to_html(signature) if signature else ""
        form = ComposeForm(values)
        form.carried = [a.filename for a in await carried(session, values)]
        return form

    async def resumed(session: WebSession, uidvalidity: int, uid: int) -> ComposeForm:
        """The form of a draft in Drafts (404 if it is gone)."""
        mailboxes = ctx.mailboxes(session)
        drafts = await drafts_mailbox(mailboxes)
        source = await fetch_source(mailboxes, drafts.name, uidvalidity, uid)
        if source is None:
            raise HTTPException(404)
        message = await _off_loop(len(source.data), parsed, source.data)
        text, html = main_text(message)
        values = _blank_values()
        for name in ("to", "cc", "bcc"):
            values[name] = address_text(mailboxes_of(message, name.capitalize()))
        senders = mailboxes_of(message, "From")
        values["from"] = senders[0][1] if senders else ""
        values["subject"] = header(message, "Subject")
        values["body"] = text
        if html is not None:
            values["html"], values["format"] = html, "html"
        values["in_reply_to"] = header(message, "In-Reply-To")
        values["references"] = header(message, "References")
        values["orig"] = header(message, ORIGINAL_FIELD)
        values["draft_uid"], values["draft_v"] = str(uid), str(uidvalidity)
        held = await _off_loop(len(source.data), attachments_of, message, source.data)
        return ComposeForm(values, [a.filename for a in held])

    # --- pages ---------------------------------------------------------------------------

    async def form_page(
        request: Request, session: WebSession, form: ComposeForm, error: str = "", notice: str = ""
    ) -> Response:
        allowed = await services.submission.allowed_senders(session.account)
        preferred = [form.values["from"]] if form.values["from"] else []
        original = _original(form.values["orig"])
        if original is not None and not preferred:
            # a reply is sent from the address the original was sent to, if it is ours
            source = await fetch_source(ctx.mailboxes(session), *original[1:])
            if source is not None:
                message = await _off_loop(len(source.data), parsed, source.data)
                preferred = [spec.lower() for _n, spec in mailboxes_of(message, "To", "Cc")]
        choices, selected = sender_choices(session.account.address, allowed, preferred)
        mode = original[0] if original is not None else ""
        return ctx.render(
            request,
            "compose.html",
            session,
            status_code=400 if error else 200,
            values=form.values,
            carried=form.carried,
            senders=choices,
            sender=selected,
            mode=mode,
            error=error,
            notice=notice,
            max_size=limit,
            signature=await signature_of(session),
            names=await display_names(session),
        )

    async def compose_get(request: Request) -> Response:
        session = await ctx.signed_in(request)
        query = request.query_params
        if query.get("draft"):
            form = await resumed(session, _int(query.get("v", "")), _int(query["draft"]))
        elif query.get("mode") in MODES:
            form = await started_from(
                session,
                query["mode"],
                query.get("f", ""),
                _int(query.get("v", "")),
                _int(query.get("uid", "")),
            )
        else:
            values = _blank_values()
            values["to"] = query.get("to", "")[:1000]
            values["body"] = _with_signature(await signature_of(session))
            values["html"] = text_to_html(values["body"]) if values["body"] else ""
            form = ComposeForm(values)
        return await form_page(request, session, form)

    # --- building, sending, saving -----------------------------------------------------

    async def uploads(form: FormData) -> list[Attachment]:
        found: list[Attachment] = []
        total = 0
        for item in form.getlist("attachments"):
            if not isinstance(item, UploadFile) or not item.filename:
                continue  # an empty file field
            data = await item.read()
            total += len(data)
            if total > limit:
                raise FormError(
                    f"The attachments are larger than the message size limit of {_size(limit)}."
                )
            mime_type = _mime_type(item)
            found.append(Attachment(safe_filename(item.filename, mime_type), mime_type, data))
        return found

    async def attachments(
        session: WebSession, values: dict[str, str], keep: set[str], new: list[Attachment]
    ) -> list[Attachment]:
        held = await carried(session, values)
        return [a for i, a in enumerate(held) if str(i) in keep] + new

    async def sender_of(session: WebSession, values: dict[str, str]) -> tuple[str, frozenset[str]]:
        """The From address chosen, checked as port 587 checks MAIL FROM."""
        account = session.account
        chosen = values["from"].strip() or account.address
        allowed = await services.submission.check_sender(account, chosen)
        return normalize_address(chosen), allowed

    def threading_headers(values: dict[str, str]) -> list[tuple[str, str]]:
        extra = []
        in_reply_to = message_ids(values["in_reply_to"])[:1]
        references = message_ids(values["references"])[-100:]
        if in_reply_to:
            extra.append(("In-Reply-To", in_reply_to[0]))
        if references:
            extra.append(("References", " ".join(references)))
        return extra

    async def recipients(values: dict[str, str]) -> list[Recipient]:
        everyone = [
            *_mailboxes(values["to"], "To"),
            *_mailboxes(values["cc"], "Cc"),
            *_mailboxes(values["bcc"], "Bcc"),
        ]
        if not everyone:
            raise FormError("Add at least one recipient.")
        if len(everyone) > ctx.max_recipients:
            raise FormError(f"At most {ctx.max_recipients} recipients per message.")
        out = []
        for spec in dict.fromkeys(spec for _name, spec in everyone):
            out.append(await services.delivery.resolve(spec, relay_allowed=True))
        return out

    async def send(
        request: Request, session: WebSession, values: dict[str, str], files: list[Attachment]
    ) -> str:
        """Submit the message; returns "local" or "queued" (for the notice)."""
        sender, allowed = await sender_of(session, values)
        rcpts = await recipients(values)
        text, html = _content(values)
        data = await _off_loop(
            sum(len(a.data) for a in files),
            partial(
                compose_message,
                sender=((await display_names(session)).get(sender, ""), sender),
                to=_mailboxes(values["to"], "To"),
                cc=_mailboxes(values["cc"], "Cc"),
                subject=values["subject"],
                text=text,
                html=html,
                attachments=files,
                extra_headers=threading_headers(values),
            ),
        )
        if len(data) > limit:
            raise FormError(
                f"The message is {_size(len(data))}, larger than the limit of {limit} bytes "
                f"({_size(limit)})."
            )
        envelope = Envelope(
            sender=sender,
            recipients=tuple(rcpts),
            helo="webmail",
            client_ip=client_ip(request),
            protocol="HTTPS" if is_tls(request) else "HTTP",
        )
        message = services.submission.begin(session.account, allowed, envelope, save_copy=True)
        await message.write(data)
        result = await message.finish()
        return "queued" if result.queue_id is not None else "local"

    async def save_draft(
        session: WebSession, values: dict[str, str], files: list[Attachment]
    ) -> None:
        """Store the form as the new version of the draft; `values` learn its UID."""
        text, html = _content(values)
        account = session.account
        chosen = values["from"].strip() or account.address
        extra = [("Date", format_datetime(datetime.now(UTC))), *threading_headers(values)]
        if _original(values["orig"]) is not None:
            extra.append((ORIGINAL_FIELD, values["orig"]))
        try:
            sender = normalize_address(chosen)
        except InvalidAddress:
            sender = account.address
        data = await _off_loop(
            sum(len(a.data) for a in files),
            partial(
                compose_message,
                sender=((await display_names(session)).get(sender, ""), sender),
                to=_lenient(values["to"]),
                cc=_lenient(values["cc"]),
                bcc=_lenient(values["bcc"]),
                subject=values["subject"],
                text=text,
                html=html,
                attachments=files,
                extra_headers=extra,
            ),
        )
        if len(data) > limit:
            raise FormError(f"The draft is larger than the limit of {_size(limit)}.")
        mailboxes = ctx.mailboxes(session)
        drafts = await drafts_mailbox(mailboxes)
        new = NewMessage(data, frozenset({"\\Draft", "\\Seen"}))
        old = _int(values["draft_uid"])
        result = None
        if old and _int(values["draft_v"]) == drafts.uidvalidity:
            try:
                result = await mailboxes.replace(drafts, old, drafts, new)
            except NoSuchMailbox:  # deleted elsewhere meanwhile: save it anew
                result = None
        if result is None:
            result = await mailboxes.append(drafts, new)
        values["draft_uid"], values["draft_v"] = str(result.uid), str(drafts.uidvalidity)

    async def delete_draft(session: WebSession, values: dict[str, str]) -> None:
        uid = _int(values["draft_uid"])
        if not uid:
            return
        drafts = await drafts_mailbox(ctx.mailboxes(session))
        if drafts.uidvalidity != _int(values["draft_v"]):
            return
        selected = SelectedMailbox.of_messages(services.store, drafts, [uid], read_only=False)
        await selected.set_flags([uid], frozenset({"\\Deleted"}), FlagMode.ADD)
        await selected.expunge([uid])

    async def mark_original(session: WebSession, values: dict[str, str]) -> None:
        """\\Answered on the message replied to, $Forwarded on one forwarded (the
        keyword IMAP clients use, registered with IANA's IMAP keywords)."""
        original = _original(values["orig"])
        if original is None:
            return
        mode, folder, uidvalidity, uid = original
        mailbox = await ctx.mailboxes(session).find(folder)
        if mailbox is None or mailbox.uidvalidity != uidvalidity or not 0 < uid < 2**32:
            return  # gone or renumbered meanwhile: nothing to mark
        flag = "\\Answered" if mode in ("reply", "replyall") else "$Forwarded"
        selected = SelectedMailbox.of_messages(services.store, mailbox, [uid], read_only=False)
        await selected.set_flags([uid], frozenset({flag}), FlagMode.ADD)

    async def compose_post(request: Request) -> Response:
        session = await ctx.signed_in(request)
        # Parsed here with limits that fit a message (Starlette's default caps a text
        # field at 1 MB); check_csrf then reads the same parsed form.
        form = await request.form(
            max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=limit * 3 + 65536
        )
        try:
            await ctx.check_csrf(request, session)
            return await handle_post(request, session, form)
        finally:
            await form.close()  # uploaded files spooled to disk are removed now

    async def handle_post(request: Request, session: WebSession, form: FormData) -> Response:
        values = _blank_values()
        values.update({name: _text(form, name) for name in FIELDS if name in form})
        # The page shown again puts this markup into the editor: only the clean form.
        values["html"] = clean_compose_html(values["html"]) if values["html"] else ""
        keep = {v for v in form.getlist("keep") if isinstance(v, str)}
        action = _text(form, "action") or "send"
        autosave = _text(form, "autosave") == "1"
        files: list[Attachment] = []
        try:
            files = await uploads(form)
            everything = await attachments(session, values, keep, files)
            if action == "draft":
                await save_draft(session, values, everything)
                if autosave:
                    return JSONResponse(
                        {
                            "ok": True,
                            "draft_uid": values["draft_uid"],
                            "draft_v": values["draft_v"],
                            "attachments": [a.filename for a in everything],
                        }
                    )
                form_state = ComposeForm(values, [a.filename for a in everything])
                return await form_page(request, session, form_state, notice="Draft saved.")
            outcome = await send(request, session, values, everything)
        except (FormError, ServiceError) as exc:
            text = str(exc) if isinstance(exc, FormError) else f"Not sent: {exc.text}"
            if action == "draft":
                text = str(exc) if isinstance(exc, FormError) else f"Not saved: {exc.text}"
            if autosave:
                return JSONResponse({"ok": False, "error": text}, status_code=400)
            return await failed_page(request, session, values, keep, files, text)
        # The message is sent: a flag or a draft that cannot be changed now (gone, or
        # the store busy) must not make the page say otherwise.
        with contextlib.suppress(ServiceError):
            await mark_original(session, values)
        with contextlib.suppress(ServiceError):
            await delete_draft(session, values)
        return RedirectResponse(f"/folder?f=INBOX&sent={outcome}", status_code=303)

    async def failed_page(
        request: Request,
        session: WebSession,
        values: dict[str, str],
        keep: set[str],
        files: list[Attachment],
        error: str,
    ) -> Response:
        """The form again with the reason; the draft is saved first, so that the files
        uploaded with the failed request are still attached (a browser cannot put them
        back into a file field)."""
        carried_names: list[str] = []
        try:
            everything = await attachments(session, values, keep, files)
            await save_draft(session, values, everything)
            carried_names = [a.filename for a in everything]
            error += " The message is kept in Drafts."
        except (FormError, ServiceError):
            held = await carried(session, values)
            carried_names = [a.filename for i, a in enumerate(held) if str(i) in keep]
        return await form_page(request, session, ComposeForm(values, carried_names), error)

    return [
        Route("/compose", compose_get, methods=["GET"]),
        Route("/compose", compose_post, methods=["POST"]),
    ]


async def _off_loop(size: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a worker thread when it handles a big message (parsing or
    writing megabytes would hold up every other request and mail session), else here."""
    if size > WORK_IN_THREAD:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


def _lenient(value: str) -> list[tuple[str, str]]:
    """A draft keeps what can be kept: addresses that do not parse are dropped."""
    out = []
    for name, spec in addresses(value):
        try:
            normalize_address(spec)
        except InvalidAddress:
            continue
        out.append((name, spec))
    return out


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{n / 1024:.0f} KB"
