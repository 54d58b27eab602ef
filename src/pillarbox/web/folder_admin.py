"""The "Manage folders" page: create, rename, delete, subscribe and unsubscribe.

Every change goes through `AccountMailboxes` (create / rename / delete / subscribe), the
service IMAP's CREATE, RENAME, DELETE and SUBSCRIBE call, so names pass the same rules
(`rules.mailbox_names`: no control characters, no empty, ``.`` or ``..`` levels, no
wildcards, at most 512 characters) and every IMAP session of the account learns of the
change from the change bus. A refusal (`MailboxExists`, `InvalidMailboxName`,
`NoSuchMailbox`, `MailboxNotAllowed`) is shown as an error on the form, with the status
400, never as a server error.

- **Create** takes a name and, optionally, the folder to put it in; ``/`` in the name
  makes sub-folders, and missing parents are created (RFC 9051 §6.3.4). A folder created
  here is subscribed (with the parents this created), so it shows in the sidebar, as in
  Thunderbird.
- **Rename** takes the whole new name, so a folder can move in the hierarchy; its
  sub-folders move with it (RFC 9051 §6.3.6). INBOX is not renamed here: in IMAP that
  moves its messages into a new folder and leaves INBOX empty, which is not what
  "rename" means to a person.
- **Delete** asks first, saying what IMAP DELETE does (RFC 9051 §6.3.5): the folder's
  messages are deleted for good, not moved to Trash, and its sub-folders are kept.
  INBOX cannot be deleted.

Must not: reach the store, or accept a mailbox id from the browser.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.model import HIERARCHY_SEPARATOR
from pillarbox.services.errors import Rejected
from pillarbox.services.mailbox import (
    AccountMailboxes,
    InvalidMailboxName,
    MailboxExists,
    MailboxNotAllowed,
    NoSuchMailbox,
)
from pillarbox.web.context import WebContext
from pillarbox.web.folder_list import folder_rows, role
from pillarbox.web.sessions import WebSession

SHOWN_NAME = 80  # characters of a refused name echoed in the error


def shown(name: str) -> str:
    """A name as it may appear in an error: control characters made visible, cut short."""
    clean = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in name)
    return clean if len(clean) <= SHOWN_NAME else clean[:SHOWN_NAME] + "…"


def error_text(exc: Rejected, name: str) -> str:
    """What a person reads when the service refused a change to folder `name`."""
    if isinstance(exc, MailboxExists):
        return f"A folder named “{shown(name)}” already exists."
    if isinstance(exc, NoSuchMailbox):
        return f"There is no folder named “{shown(name)}” (any more)."
    if isinstance(exc, InvalidMailboxName):
        reason = exc.text.replace("Mailbox name", "The name")
        return (
            f"“{shown(name)}” cannot be a folder name: {reason}. Names may not contain "
            "control characters, % or *, empty, '.' or '..' levels, and are at most "
            "512 characters long."
        )
    if isinstance(exc, MailboxNotAllowed):
        return f"Not possible for “{shown(name)}”: {exc.text}."
    return exc.text


def _printable(text: str) -> str:
    """A refused name put back in its field, without the characters that made it so."""
    return "".join(c for c in text if c.isprintable())


NOTICES = {
    "created": "Folder “{name}” created.",
    "renamed": "Folder renamed to “{name}”.",
    "deleted": "Folder “{name}” deleted.",
    "subscribed": "Subscribed to “{name}”.",
    "unsubscribed": "Unsubscribed from “{name}”: mail apps that list subscribed folders "
    "only will not show it.",
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _done(what: str, name: str) -> RedirectResponse:
    return RedirectResponse("/folders?" + urlencode({"done": what, "name": name}), 303)


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def page(
        request: Request,
        session: WebSession,
        *,
        error: str = "",
        status_code: int = 200,
        values: dict[str, str] | None = None,
    ) -> Response:
        mailboxes = ctx.mailboxes(session)
        rows = await folder_rows(mailboxes, await mailboxes.list_all())
        done = request.query_params.get("done", "")
        notice = ""
        if not error and done in NOTICES:
            notice = NOTICES[done].format(name=shown(request.query_params.get("name", "")))
        return ctx.render(
            request,
            "folders_manage.html",
            session,
            status_code=status_code,
            rows=rows,
            error=error,
            notice=notice,
            values=values or {},
        )

    async def manage(request: Request) -> Response:
        session = await ctx.signed_in(request)
        return await page(request, session)

    async def create(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        name, parent = _text(form, "name").strip(), _text(form, "parent")
        values = {"name": _printable(name), "parent": parent}
        if not name:
            return await page(
                request, session, error="Enter a name.", status_code=400, values=values
            )
        full = parent + HIERARCHY_SEPARATOR + name if parent else name
        mailboxes = ctx.mailboxes(session)
        try:
            before = {m.name for m in await mailboxes.list_all()}
            made = await mailboxes.create(full)
            await _subscribe_new(mailboxes, made.name, before)
        except Rejected as exc:
            text = error_text(exc, full)
            return await page(request, session, error=text, status_code=400, values=values)
        return _done("created", made.name)

    async def rename(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        old, new = _text(form, "f"), _text(form, "to").strip()
        values = {"rename_from": old, "rename_to": _printable(new)}
        mailboxes = ctx.mailboxes(session)
        try:
            mailbox = await mailboxes.get(old)
            if mailbox.name == "INBOX":
                raise MailboxNotAllowed("INBOX keeps its name")
            if not new:
                raise InvalidMailboxName("Mailbox name is empty")
            await mailboxes.rename(mailbox.name, new)
            renamed = await mailboxes.get(new)
        except Rejected as exc:
            culprit = new if isinstance(exc, InvalidMailboxName | MailboxExists) else old
            text = error_text(exc, culprit)
            return await page(request, session, error=text, status_code=400, values=values)
        return _done("renamed", renamed.name)

    async def delete(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        name = _text(form, "f")
        mailboxes = ctx.mailboxes(session)
        try:
            mailbox = await mailboxes.get(name)
            if mailbox.name == "INBOX":
                raise MailboxNotAllowed("INBOX cannot be deleted")
            if _text(form, "confirm") != "yes":
                status = await mailboxes.status(mailbox)
                prefix = mailbox.name + HIERARCHY_SEPARATOR
                children = [m.name for m in await mailboxes.list_all() if m.name.startswith(prefix)]
                return ctx.render(
                    request,
                    "folder_delete.html",
                    session,
                    mailbox=mailbox,
                    use=role(mailbox),
                    messages=status.messages,
                    children=sorted(children),
                )
            await mailboxes.delete(mailbox.name)
        except Rejected as exc:
            text = error_text(exc, name)
            return await page(request, session, error=text, status_code=400)
        return _done("deleted", mailbox.name)

    async def subscribe(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        name = _text(form, "f")
        wanted = _text(form, "subscribe") == "1"
        mailboxes = ctx.mailboxes(session)
        try:
            mailbox = await mailboxes.get(name)
            await mailboxes.subscribe(mailbox.name, wanted)
        except Rejected as exc:
            text = error_text(exc, name)
            return await page(request, session, error=text, status_code=400)
        return _done("subscribed" if wanted else "unsubscribed", mailbox.name)

    return [
        Route("/folders", manage, methods=["GET"]),
        Route("/folders/create", create, methods=["POST"]),
        Route("/folders/rename", rename, methods=["POST"]),
        Route("/folders/delete", delete, methods=["POST"]),
        Route("/folders/subscribe", subscribe, methods=["POST"]),
    ]


async def _subscribe_new(mailboxes: AccountMailboxes, name: str, before: set[str]) -> None:
    """Subscribe a folder made here and the parents its creation made (not parents that
    existed: someone may have unsubscribed those on purpose)."""
    parts = name.split(HIERARCHY_SEPARATOR)
    for i in range(1, len(parts) + 1):
        level = HIERARCHY_SEPARATOR.join(parts[:i])
        if level not in before:
            await mailboxes.subscribe(level, True)
