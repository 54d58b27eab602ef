"""Actions on selected messages: mark read/unread, flag, move, archive, delete, junk.

One endpoint, ``POST /messages/act``, serves the list's toolbar, drag and drop, and the
message page's buttons: a plain form (CSRF token, folder name, its UIDVALIDITY, the
UIDs, the action, a move target and the page to return to), so it works without
JavaScript. The folder is resolved by name in the signed-in account and the UIDs only
inside it (`SelectedMailbox.of_messages`), so a UID of another account's message names
nothing here. A UIDVALIDITY that is not the folder's any more means the UIDs may name
other messages now (RFC 9051 §2.3.1.1): nothing is done and the page says so.

Each action is a handful of service calls for all its messages together, never one per
message: flags through `SelectedMailbox.set_flags`, moves through `AccountMailboxes.move`
(RFC 6851, atomic), permanent deletion as ``\\Deleted`` plus an expunge of exactly those
UIDs (RFC 4315 UID EXPUNGE: other messages already marked ``\\Deleted`` stay). The store
publishes each change on the change bus, so IMAP sessions and other browsers see it.

- *delete* moves to the account's \\Trash folder (RFC 6154); in Trash it deletes for
  good. *archive* moves to \\Archive. *junk* sets the keyword ``$Junk``, clears
  ``$NotJunk`` and moves to \\Junk; *not junk* does the opposite and moves to INBOX —
  the keywords Thunderbird and Apple Mail use to train their filters (RFC 5788 registry,
  RFC 9051 §2.3.2). A special-use folder the account lacks is created (as Thunderbird
  does), or one of the usual name is taken.

Afterwards the browser goes back to the page it came from (same folder, page, search)
with a short notice in the query string (`notice`), e.g. "3 messages moved to Archive".

Must not: touch another account's mailbox, or call the store once per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pillarbox.model import FlagMode, Mailbox
from pillarbox.services.errors import Rejected
from pillarbox.services.mailbox import AccountMailboxes, MailboxExists
from pillarbox.services.selected import SelectedMailbox
from pillarbox.web.context import WebContext, safe_next
from pillarbox.web.folder_list import sidebar

MAX_UIDS = 5000  # one request; a page shows 50, this is only a bound
NOTICE_KEYS = ("done", "n", "to", "sent")  # a notice shown once, not carried along

JUNK = "$Junk"  # RFC 5788 registry
NOT_JUNK = "$NotJunk"

# action → the flag it adds or removes
FLAG_ACTIONS: dict[str, tuple[str, FlagMode]] = {
    "read": ("\\Seen", FlagMode.ADD),
    "unread": ("\\Seen", FlagMode.REMOVE),
    "flag": ("\\Flagged", FlagMode.ADD),
    "unflag": ("\\Flagged", FlagMode.REMOVE),
}
MOVE_ACTIONS = frozenset({"move", "archive", "delete", "junk", "notjunk"})
# special-use folders an action moves to, with the name to create one under
SPECIAL_TARGETS = {"archive": ("\\Archive", "Archive"), "delete": ("\\Trash", "Trash")}
SPECIAL_TARGETS |= {"junk": ("\\Junk", "Junk")}


@dataclass(frozen=True, slots=True)
class Outcome:
    done: str
    count: int = 0
    to: str = ""


def _count(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def notice(params: Mapping[str, str]) -> tuple[str, bool]:
    """The notice a folder page shows after an action, and whether it is an error."""
    done = params.get("done", "")
    try:
        n = int(params.get("n", "0"))
    except ValueError:
        n = 0
    to = params.get("to", "")
    errors = {
        "stale": "This folder changed since the page was shown; nothing was done. "
        "Select the messages again.",
        "none": "No messages selected.",
        "gone": "Those messages are no longer there.",
        "notarget": f"There is no folder named {to}." if to else "Choose a folder to move to.",
        "failed": "That did not work: " + to if to else "That did not work.",
    }
    if done in errors:
        return errors[done], True
    texts = {
        "read": f"{_count(n)} marked as read.",
        "unread": f"{_count(n)} marked as unread.",
        "flag": f"{_count(n)} flagged.",
        "unflag": f"{_count(n)} unflagged.",
        "move": f"{_count(n)} moved to {to}.",
        "purge": f"{_count(n)} deleted for good.",
        "junk": f"{_count(n)} marked as junk" + (f" and moved to {to}." if to else "."),
        "notjunk": f"{_count(n)} marked as not junk" + (f" and moved to {to}." if to else "."),
        "same": f"{_count(n)} already in {to}.",
    }
    return texts.get(done, ""), False


def _uids(form: FormData) -> list[int]:
    found: set[int] = set()
    for value in form.getlist("uid"):
        if not isinstance(value, str):
            continue
        for part in value.split(","):  # drag and drop may send "3,5,8"
            try:
                uid = int(part)
            except ValueError:
                continue
            if 0 < uid < 2**32:
                found.add(uid)
    if len(found) > MAX_UIDS:
        raise HTTPException(413, "Too many messages in one request")
    return sorted(found)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def back_url(back: str, folder: str, outcome: Outcome | None) -> str:
    """The local page the form came from (else the folder), with the notice's keys."""
    target = safe_next(back) if back else ""
    if not target or target == "/":
        target = "/folder?" + urlencode({"f": folder})
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in NOTICE_KEYS]
    if outcome is not None:
        query.append(("done", outcome.done))
        if outcome.count:
            query.append(("n", str(outcome.count)))
        if outcome.to:
            query.append(("to", outcome.to))
    return parts.path + ("?" + urlencode(query) if query else "")


async def special_folder(mailboxes: AccountMailboxes, use: str, name: str) -> Mailbox:
    """The account's folder with special use `use` (RFC 6154); failing that, the one
    called `name`; failing that, a new one with that use."""
    everything = await mailboxes.list_all()
    for mailbox in everything:
        if mailbox.special_use == use:
            return mailbox
    for mailbox in everything:
        if mailbox.name == name:
            return mailbox
    try:
        return await mailboxes.create(name, special_use=use)
    except MailboxExists:  # made meanwhile by another session
        return await mailboxes.get(name)


async def act(
    ctx: WebContext,
    mailboxes: AccountMailboxes,
    mailbox: Mailbox,
    uids: list[int],
    action: str,
    target_name: str,
) -> Outcome:
    """Run one action on the messages `uids` of `mailbox` (already checked)."""
    selected = SelectedMailbox.of_messages(ctx.services.store, mailbox, uids, read_only=False)
    # Only messages that exist in this folder count (one query); the rest is ignored.
    present = [row.uid for row in await selected.flags(uids)]
    if not present:
        return Outcome("gone")
    if action in FLAG_ACTIONS:
        flag, mode = FLAG_ACTIONS[action]
        await selected.set_flags(present, frozenset({flag}), mode)
        return Outcome(action, len(present))
    if action == "move":
        found = await mailboxes.find(target_name) if target_name else None
        if found is None:  # none chosen, or deleted meanwhile on another device
            return Outcome("notarget", to=target_name)
        target = found
    elif action == "notjunk":
        target = await mailboxes.get("INBOX")
    else:
        use, name = SPECIAL_TARGETS[action]
        target = await special_folder(mailboxes, use, name)
    if action == "delete" and target.id == mailbox.id:
        # In Trash: for good, and only these UIDs (RFC 4315 §2.1 UID EXPUNGE).
        await selected.set_flags(present, frozenset({"\\Deleted"}), FlagMode.ADD)
        removed = await selected.expunge(present)
        return Outcome("purge", len(removed.uids))
    if action == "junk":
        await selected.set_flags(present, frozenset({JUNK}), FlagMode.ADD)
        await selected.set_flags(present, frozenset({NOT_JUNK}), FlagMode.REMOVE)
    elif action == "notjunk":
        await selected.set_flags(present, frozenset({NOT_JUNK}), FlagMode.ADD)
        await selected.set_flags(present, frozenset({JUNK}), FlagMode.REMOVE)
    if target.id == mailbox.id:
        if action in ("junk", "notjunk"):
            return Outcome(action, len(present))
        return Outcome("same", len(present), target.name)
    moved = await mailboxes.move(mailbox, present, target)
    done = action if action in ("junk", "notjunk") else "move"
    return Outcome(done, len(moved.source_uids), target.name)


def _uidvalidity(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def routes(ctx: WebContext) -> list[BaseRoute]:
    async def messages_act(request: Request) -> Response:
        session = await ctx.signed_in(request)
        form = await ctx.check_csrf(request, session)
        action = _text(form, "action")
        if action not in FLAG_ACTIONS and action not in MOVE_ACTIONS:
            raise HTTPException(400, "Unknown action")
        name = _text(form, "f")
        back = _text(form, "back")
        mailboxes = ctx.mailboxes(session)
        mailbox = await mailboxes.find(name)
        if mailbox is None:
            raise HTTPException(404, "No such folder")
        if mailbox.uidvalidity != _uidvalidity(_text(form, "v")):
            outcome = Outcome("stale")
        else:
            uids = _uids(form)
            if not uids:
                outcome = Outcome("none")
            else:
                try:
                    outcome = await act(ctx, mailboxes, mailbox, uids, action, _text(form, "to"))
                except Rejected as exc:  # a target that went away, a full mailbox...
                    outcome = Outcome("failed", to=exc.text)
        return RedirectResponse(back_url(back, mailbox.name, outcome), status_code=303)

    async def move_chooser(request: Request) -> Response:
        """Where to move one message to, for the message page (which has no folder
        list of its own): a form posting to the same endpoint."""
        session = await ctx.signed_in(request)
        query = request.query_params
        mailboxes = ctx.mailboxes(session)
        mailbox = await mailboxes.find(query.get("f", ""))
        if mailbox is None or str(mailbox.uidvalidity) != query.get("v"):
            raise HTTPException(404)
        try:
            uid = int(query.get("uid", ""))
        except ValueError:
            raise HTTPException(404) from None
        folders = await sidebar(mailboxes)
        return ctx.render(
            request,
            "message_move.html",
            session,
            mailbox=mailbox,
            uid=uid,
            targets=[t for t in folders if t.name != mailbox.name],
        )

    return [
        Route("/messages/act", messages_act, methods=["POST"]),
        Route("/messages/move", move_chooser, methods=["GET"]),
    ]
