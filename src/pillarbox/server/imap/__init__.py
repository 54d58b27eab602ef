"""The IMAP front-end (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1) on the protocol core
and the store.

Modules: `session` (the connection loop, change reporting), `errors` (failures and the
one table from errors to replies), `dispatch` (the command → handler table, built in one
place), one module per command family — `auth` (any-state and login commands, ENABLE,
IDLE), `mailboxes` (SELECT … LIST, STATUS), `fetch`, `search`, `store_cmd` (STORE, COPY,
MOVE, EXPUNGE), `append` — and `names` (modified UTF-7, LIST patterns), `wire`
(serialisation helpers). Handlers call the account's `services.mailbox.AccountMailboxes`
and the session's `services.selected.SelectedMailbox`; mail logic (section planning,
MULTIAPPEND, flag rules) lives there, not here.

Must not: import another front-end or a concrete store (tests/test_layers.py).
"""

from __future__ import annotations

from pillarbox.config import Config
from pillarbox.server.imap.dispatch import ROUTER
from pillarbox.server.imap.push import PushBatch
from pillarbox.server.imap.session import Session
from pillarbox.server.listener import Handler, Stream
from pillarbox.services.context import Services


def make_handler(listener_name: str, services: Services, config: Config) -> Handler:
    """The per-connection coroutine for listener "imap" (STARTTLS) or "imaps"."""

    push = PushBatch()  # one per listener: the IDLE sessions' shared fan-out

    async def handle(stream: Stream) -> None:
        await Session(stream, listener_name, services, config.imap, ROUTER, push).run()

    return handle
