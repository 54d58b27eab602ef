"""The table from command events to their handlers, built in one place.

Each handler module holds one command family (`auth`: any state, login, ENABLE, IDLE;
`mailboxes`: SELECT … STATUS; `fetch`; `search`; `store_cmd`: STORE, COPY, MOVE,
EXPUNGE; `append`). `route` is generic, so mypy checks that each handler takes the
command type it is registered for although the table is keyed by type, and refuses a
second handler for one type at import time; the session receives `ROUTER` and never
imports a handler (no import cycle).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import (
    append,
    auth,
    compress,
    contexts,
    fetch,
    mailboxes,
    notify,
    quota,
    replace,
    search,
    sort,
    store_cmd,
    unauthenticate,
    wire,
)
from pillarbox.server.imap.session import Handler, Session

C = TypeVar("C", bound=c.Command)

HANDLERS: dict[type[c.Command], Handler[Any]] = {}


def route(cls: type[C], handler: Handler[C]) -> None:
    """Register `handler` for commands of type `cls` (once: a second is a bug)."""
    if cls in HANDLERS:
        raise ValueError(f"{cls.__name__} has two handlers")
    HANDLERS[cls] = handler


route(c.Capability, auth.capability)
route(c.Noop, auth.noop)
route(c.Check, auth.noop)
route(c.Logout, auth.logout)
route(c.Id, auth.id_)
route(c.StartTls, auth.starttls)
route(c.Login, auth.login)
route(c.Authenticate, auth.authenticate)
route(c.Enable, auth.enable)
route(c.Idle, auth.idle)
route(c.Select, mailboxes.select)
route(c.Examine, mailboxes.select)
route(c.Create, mailboxes.create)
route(c.Delete, mailboxes.delete)
route(c.Rename, mailboxes.rename)
route(c.Subscribe, mailboxes.subscribe)
route(c.Unsubscribe, mailboxes.subscribe)
route(c.List, mailboxes.list_)
route(c.Lsub, mailboxes.lsub)
route(c.Namespace, mailboxes.namespace)
route(c.Status, mailboxes.status)
route(c.Close, mailboxes.close)
route(c.Unselect, mailboxes.unselect)
route(c.Append, append.append)
route(c.Replace, replace.replace)
route(c.Fetch, fetch.fetch)
route(c.Search, search.search)
route(c.Store, store_cmd.store)
route(c.Copy, store_cmd.copy)
route(c.Move, store_cmd.copy)
route(c.Expunge, store_cmd.expunge_cmd)
route(c.UidExpunge, store_cmd.expunge_cmd)
route(c.Compress, compress.compress)
route(c.Sort, sort.sort)
route(c.Thread, sort.thread)
route(c.Unauthenticate, unauthenticate.unauthenticate)
route(c.Notify, notify.notify)
route(c.GetQuotaRoot, quota.getquotaroot)
route(c.GetQuota, quota.getquota)
route(c.SetQuota, quota.setquota)
route(c.CancelUpdate, contexts.cancelupdate)


class _Router:
    """`session.Router` over `HANDLERS` (read at each command, so tests may patch it)."""

    def handler(self, cmd: c.Command) -> Handler[c.Command] | None:
        return HANDLERS.get(type(cmd))

    async def auth_response(self, session: Session, ev: c.AuthenticateResponse) -> bytes | None:
        if ev.cancelled:
            return wire.tagged(ev.tag, "BAD", "Authentication cancelled")
        return await auth.finish_plain(session, ev.tag, ev.data)


ROUTER = _Router()
