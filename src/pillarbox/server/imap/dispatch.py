"""The table from command events to their handlers (one module per command family)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import append, auth, fetch, mailboxes, search, store_cmd

Handler = Callable[[Any, Any], Awaitable[bytes | None]]

HANDLERS: dict[type[c.Command], Handler] = {
    c.Capability: auth.capability,
    c.Noop: auth.noop,
    c.Check: auth.noop,
    c.Logout: auth.logout,
    c.Id: auth.id_,
    c.StartTls: auth.starttls,
    c.Login: auth.login,
    c.Authenticate: auth.authenticate,
    c.Enable: auth.enable,
    c.Idle: auth.idle,
    c.Select: mailboxes.select,
    c.Examine: mailboxes.select,
    c.Create: mailboxes.create,
    c.Delete: mailboxes.delete,
    c.Rename: mailboxes.rename,
    c.Subscribe: mailboxes.subscribe,
    c.Unsubscribe: mailboxes.subscribe,
    c.List: mailboxes.list_,
    c.Lsub: mailboxes.lsub,
    c.Namespace: mailboxes.namespace,
    c.Status: mailboxes.status,
    c.Close: mailboxes.close,
    c.Unselect: mailboxes.unselect,
    c.Append: append.append,
    c.Fetch: fetch.fetch,
    c.Search: search.search,
    c.Store: store_cmd.store,
    c.Copy: store_cmd.copy,
    c.Move: store_cmd.copy,
    c.Expunge: store_cmd.expunge_cmd,
    c.UidExpunge: store_cmd.expunge_cmd,
}
