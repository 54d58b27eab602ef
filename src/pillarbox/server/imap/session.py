"""One IMAP connection: drives the sans-I/O core, dispatches commands, reports changes.

Theory of operation: `Session.run` reads bytes into `ServerConnection` and handles each
event in turn. Pipelined commands are answered in order, one at a time; while one runs
nothing more is read and each answer is written with back-pressure (`Stream.write`
drains), so a client that pipelines without reading holds at most one read buffer
(64 KiB) of commands in the server, whatever its pipeline depth: the bound on commands in
flight is enforced by not reading rather than by refusing (isync pipelines without limit
by default, and refusing would break it).

A background task reads the account's change bus and *records* each event in the
selected view; the view is only *applied* at points where RFC 9051 allows untagged
updates: at NOOP/IDLE and at the end of commands (RFC 9051 §7), never an
EXPUNGE during FETCH, STORE or SEARCH by sequence number (§7.5.1), so sequence numbers
never shift under the client.

Commands are run by the handler the `Router` (built once in `dispatch`) names for the
command's type; the session imports no handler, so handlers can import the session
without a cycle. Errors: one table (`errors.reply_for`) turns service errors into tagged
BAD/NO with RFC 9051 §7.1 response codes; anything unexpected is logged with the
connection id and traceback and answered ``NO [SERVERBUG]`` — never with exception text.

RFCs: 9051, 3501 (IMAP4rev1 differences), 2177 (IDLE), 2971 (ID), 4959 (SASL-IR),
4616 (PLAIN), 5161 (ENABLE), 7162 (CONDSTORE/QRESYNC state, MODSEQ in FETCH, VANISHED),
8314 §3 / 9051 §11.1 (no cleartext passwords without TLS).

Must not: parse IMAP syntax (the core does), touch the store except through the
account's `AccountMailboxes` and the `SelectedMailbox` service, or let one account reach
another's mailboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Protocol, TypeVar

from pillarbox.config import ImapConfig
from pillarbox.model import Account, Change, FlagRow, Mailbox, MailboxesChanged, Resync
from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.proto.imap import responses
from pillarbox.proto.imap.connection import Limits, ServerConnection, State
from pillarbox.server.imap import esearch, wire
from pillarbox.server.imap.announced_flags import AnnouncedFlags
from pillarbox.server.imap.errors import KNOWN_FAILURES, BadCommand, WriteStalled, reply_for
from pillarbox.server.imap.push import PushBatch
from pillarbox.server.imap.wakeup import Wakeup
from pillarbox.server.listener import Stream
from pillarbox.services.context import Services, Subscription
from pillarbox.services.errors import LimitReached
from pillarbox.services.live_results import LiveResults
from pillarbox.services.mailbox import AccountMailboxes
from pillarbox.services.selected import SelectedMailbox
from pillarbox.services.view import Removed, Updates

log = logging.getLogger("pillarbox.imap")

SERVER_ID = (("name", "Pillarbox"), ("vendor", "Pillarbox"))
RECENT_FLAG = frozenset({"\\Recent"})

CommandT = TypeVar("CommandT", bound=c.Command, contravariant=True)


class Handler(Protocol[CommandT]):
    """Runs one command; returns its tagged completion (sent after pending updates), or
    None when it already answered (STARTTLS, an AUTHENTICATE challenge, IDLE's end)."""

    def __call__(self, session: Session, cmd: CommandT, /) -> Awaitable[bytes | None]: ...


class Notifier(Protocol):
    """What NOTIFY (RFC 5465, `notify`) asked to be told, kept by the session while set."""

    def record(self, change: Change) -> bool:
        """Note a change-bus event (no I/O, no await); True when it may need reporting."""
        ...

    @property
    def selected_push(self) -> bool | None:
        """How the selected mailbox's updates go out between commands: None when NOTIFY
        names no selected filter (only at command ends, as without NOTIFY), True for
        "selected" (expunges too), False for "selected-delayed" (RFC 5465 §5.1)."""
        ...

    @property
    def selected_flags(self) -> bool:
        """Other sessions' flag changes in the selected mailbox are reported (as FETCH):
        False when NOTIFY names the selected mailbox without FlagChange (RFC 5465 §5.1)."""
        ...

    async def report(self, session: Session) -> None:
        """Queue the untagged responses (STATUS, LIST) for what was recorded."""
        ...

    async def new_in_selected(self, session: Session, uids: list[int]) -> None:
        """Messages `uids` were just announced by EXISTS in the selected mailbox (MessageNew
        with fetch attributes sends them, RFC 5465 §5.2)."""
        ...


class Router(Protocol):
    """Which handler runs a command (`dispatch.ROUTER`, built in one place)."""

    def handler(self, cmd: c.Command) -> Handler[c.Command] | None: ...

    async def auth_response(self, session: Session, ev: c.AuthenticateResponse) -> bytes | None:
        """The client's answer to an AUTHENTICATE challenge."""
        ...


# Commands during which an EXPUNGE response must not be sent (RFC 9051 §7.5.1): FETCH,
# STORE and SEARCH by sequence number. (UID variants may get them, §7.5.1.)
def _expunge_allowed(cmd: c.Command) -> bool:
    if isinstance(cmd, c.Fetch | c.Store | c.Search | c.Sort | c.Thread):
        return cmd.uid
    return not isinstance(cmd, c.Copy)  # COPY by number: keep numbers stable too


class Session:
    """State of one connection; the command modules act on it."""

    def __init__(
        self,
        stream: Stream,
        listener: str,
        services: Services,
        config: ImapConfig,
        router: Router,
        push: PushBatch | None = None,
    ) -> None:
        self.stream = stream
        self.router = router
        self.listener = listener
        self.services = services
        self.config = config
        self.conn = ServerConnection(
            Limits(
                max_line_length=config.max_line_length,
                max_literal_size=config.max_literal_size,
                max_command_size=max(config.max_literal_size * 2, 1024 * 1024),
                literal_minus=config.literal_minus,
            )
        )
        self.conn_id = stream.info.conn_id
        self.account: Account | None = None
        self.mailboxes: AccountMailboxes | None = None
        self.selected: SelectedMailbox | None = None
        self.announced: AnnouncedFlags | None = None  # FLAGS told for `selected`
        self.enabled: set[str] = set()
        self.saved_search: list[int] = []  # RFC 5182 "$", as UIDs
        self.live = LiveResults()  # RFC 5267 §4.3 update contexts of the selected mailbox
        self.live_fetch: dict[str, tuple[c.FetchItem, ...]] = {}  # UPDATE (...), RFC 5465 §7
        self.notifier: Notifier | None = None  # RFC 5465 NOTIFY SET, until NOTIFY NONE
        self._out: list[bytes] = []
        self._out_size = 0
        self._changes: Subscription | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._changed = Wakeup()
        self._read_task: asyncio.Task[bytes] | None = None
        self._listening = False  # changes are recorded inside publish (see start_pump)
        self._done = False
        self._push = push
        self._idle_waiting = False  # in IDLE, suspended until bytes or a change come
        self._push_queued = False  # in `_push`'s next batch
        self._drain_due = False  # a pushed write filled the transport's buffer

    # ------------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        """Queue response bytes; written at the end of the command or when large."""
        self._out.append(data)
        self._out_size += len(data)

    def untagged(self, data: bytes) -> None:
        self.send(b"* " + data + b"\r\n")

    async def flush(self) -> None:
        """Write what is queued. A client that stops reading makes the write wait; after
        `idle_timeout` without the socket draining the connection is aborted (its
        buffered output dropped), so a peer that never reads can neither grow our
        buffers nor hold the session forever."""
        if self._out or self._drain_due:
            data = b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            self._drain_due = False
            if self.stream.write_nowait(data):
                return  # the usual case: no coroutine, no timer per write
            try:
                async with asyncio.timeout(self.config.idle_timeout):
                    await self.stream.drain()
            except TimeoutError:
                self._abort()
                raise WriteStalled("client stopped reading") from None

    async def send_stream(self, chunks: AsyncIterator[bytes]) -> None:
        """Write what is queued, then each chunk as the client takes it: the next chunk
        is not asked for until the transport's buffer is back under its limit, so a
        streamed literal costs at most about one chunk of memory here (issue 16), over
        TLS and COMPRESS too (each chunk is compressed as it is written)."""
        await self.flush()
        async for chunk in chunks:
            self.send(chunk)
            await self.flush()

    def flush_nowait(self) -> None:
        """Hand what is queued to the transport without waiting for it to drain."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            self.stream.write_nowait(data)

    def _abort(self) -> None:
        """Drop the connection now: a plain close would wait for the unread output."""
        self.stream.abort()

    async def maybe_flush(self) -> None:
        """Write when enough output piled up (big FETCH answers stream out in pieces)."""
        if self._out_size >= 256 * 1024:
            await self.flush()

    # ------------------------------------------------------------------ properties

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def condstore(self) -> bool:
        """RFC 7162 §3.1: CONDSTORE is on (ENABLE, or any CONDSTORE-enabling command);
        every FETCH response then carries MODSEQ."""
        return "CONDSTORE" in self.enabled

    @property
    def qresync(self) -> bool:
        """RFC 7162 §3.2.3: QRESYNC is on (only by ENABLE); expunges go as VANISHED."""
        return "QRESYNC" in self.enabled

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command ran (RFC 7162 §3.1). If a mailbox is selected, its
        HIGHESTMODSEQ is announced now (RFC 7162 §3.1, §3.1.2.1; below any expunge held
        back, §3.2), since the client had no
        reason to expect one when it selected it."""
        if "CONDSTORE" in self.enabled:
            return
        self.enabled.add("CONDSTORE")
        if self.selected is not None:
            high = self.selected.view.reported_highestmodseq
            self.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % high)

    def report_expunged(self, removed: Removed) -> None:
        """``* n EXPUNGE`` per message (RFC 9051 §7.5.1), or one ``* VANISHED uids`` once
        QRESYNC is enabled (RFC 7162 §3.2.10); first the REMOVEFROM of every update context
        that held one of them, numbered as before the expunge (RFC 5267 §4.3.4: "MUST be
        sent prior to the expunge notification itself")."""
        if removed.uids and len(self.live):
            old_seq = dict(zip(removed.uids, sorted(removed.seqs), strict=True))
            for tag, live, change in self.live.expunged(removed.uids):
                number = _same if live.by_uid else old_seq.__getitem__
                self.untagged(esearch.update(tag, live, change, number))
        if self.qresync:
            if removed.uids:
                self.send(responses.vanished(removed.uids))
            return
        for seq in removed.seqs:
            self.untagged(b"%d EXPUNGE" % seq)

    @property
    def utf8_names(self) -> bool:
        """Mailbox names go as UTF-8 (RFC 6855 / RFC 9051), else modified UTF-7."""
        return "IMAP4REV2" in self.enabled or "UTF8=ACCEPT" in self.enabled

    def require_mailboxes(self) -> AccountMailboxes:
        assert self.mailboxes is not None  # the core allows these commands only after login
        return self.mailboxes

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise BadCommand("No mailbox selected")
        return self.selected

    def resolve(self, sequence_set: c.SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a message set names, from the view alone (RFC 9051 §6.4.9, RFC 5182 "$")."""
        return self.require_selected().resolve(sequence_set, uid=uid, saved=self.saved_search)

    def plaintext_ok(self) -> bool:
        auth = self.services.auth
        return bool(
            auth.plaintext_allowed(
                tls=self.stream.tls_active, loopback=self.stream.info.is_loopback
            )
        )

    def capabilities(self) -> str:
        """The CAPABILITY list. Extensions that do not depend on the account are listed
        before login too: RFC 9051 §7.2.2 lets the list change after login, but clients
        such as Python's imaplib decide from the first list they see (Dovecot, too,
        lists IDLE before login); LOGIN/AUTHENTICATE send the list again in their OK."""
        literal = "LITERAL-" if self.config.literal_minus else "LITERAL+"  # RFC 7888
        caps = ["IMAP4rev1", "IMAP4rev2", literal, "SASL-IR", "ID", "ENABLE"]
        if self.account is None:
            if self.stream.tls_available:
                caps.append("STARTTLS")
            if self.plaintext_ok():
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
        caps += [
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",  # RFC 6154 §3
            "ESEARCH",
            "SEARCHRES",
            "WITHIN",  # RFC 5032
            "MULTIAPPEND",
            "CATENATE",  # RFC 4469
            "BINARY",
            "UTF8=ACCEPT",
            "STATUS=SIZE",
            "QUOTA",  # RFC 9208 §3.1 (no QUOTASET: limits are the administrator's)
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "COMPRESS=DEFLATE",
            "SORT",
            "SORT=DISPLAY",
            "ESORT",
            "CONTEXT=SEARCH",  # RFC 5267 §4
            "CONTEXT=SORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "UNAUTHENTICATE",
            "PREVIEW",
            "OBJECTID",  # RFC 8474
            "SAVEDATE",  # RFC 8514
            "REPLACE",  # RFC 8508
            "CONDSTORE",  # RFC 7162 §3.1.1
            "QRESYNC",  # RFC 7162 §3.2.2
            "NOTIFY",  # RFC 5465 §3
            f"APPENDLIMIT={self.config.max_literal_size}",
        ]
        return " ".join(caps)

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        try:
            self.untagged(
                b"OK [CAPABILITY " + self.capabilities().encode() + b"] Pillarbox IMAP ready"
            )
            await self.flush()
            while not self._done:
                if self.notifier is not None:
                    # RFC 5465 §1: with NOTIFY set, updates go out between commands too.
                    # Without waiting for a slow client to take them: what it leaves
                    # unread is bounded by NOTIFICATIONOVERFLOW (`_push_notifications`).
                    got = await self.read_or_change()
                    if got is None:
                        await self._push_notifications()
                        self.flush_nowait()
                        continue
                    data = got
                else:
                    data = await self._read()
                self.conn.receive_data(data)
                await self._drain_events()
                await self.flush()
        except TimeoutError:
            with contextlib.suppress(Exception):
                self.untagged(b"BYE Idle timeout")
                await self.flush()
        finally:
            await self._teardown()

    async def _read(self) -> bytes:
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(self.stream.read(self.config.idle_timeout))
        task = self._read_task
        try:
            return await task
        finally:
            if task.done():
                self._read_task = None

    async def read_or_change(self) -> bytes | None:
        """Bytes from the client, or None when a change was recorded first (IDLE)."""
        if self._read_task is None:
            self._read_task = asyncio.ensure_future(self.stream.read(self.config.idle_timeout))
        read = self._read_task
        await self._changed.wait_or(read)
        if read.done():
            self._read_task = None
            return read.result()
        return None

    def _release_account(self) -> None:
        if self.account is not None:
            self.services.sessions.release(self.account.id, self.stream.info.peer_ip)
            self.account = None

    async def _teardown(self) -> None:
        self._release_account()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(BaseException):
                await self._read_task
        await self._stop_pump()

    async def _drain_events(self) -> None:
        while not self._done:
            try:
                ev = self.conn.next_event()
            except RemoteProtocolError as e:
                self.send(e.reply_hint)
                if e.fatal:
                    self._done = True
                continue
            if ev is c.NEED_DATA:
                return
            if isinstance(ev, c.ConnectionClosed):
                self._done = True
                return
            if isinstance(ev, c.ContinuationNeeded):
                self.send(b"+ Ready\r\n")
                await self.flush()
                continue
            if isinstance(ev, c.AuthenticateResponse):
                reply = await self._guard(ev.tag, functools.partial(self._auth_response, ev))
                if reply is not None:
                    self.send(reply)
                await self.flush()
                continue
            if isinstance(ev, c.Done):
                continue  # stray DONE outside IDLE is refused by the core
            assert isinstance(ev, c.Command)
            await self._command(ev)
            await self.flush()

    async def _command(self, cmd: c.Command) -> None:
        handler = self.router.handler(cmd)
        if handler is None:
            self.send(wire.tagged(cmd.tag, "BAD", "Command not supported"))
            return
        ok = await self._guard(cmd.tag, lambda: handler(self, cmd), cmd)
        selected = self.selected is not None and self.conn.state is State.SELECTED
        if ok is not None and (selected or self.notifier is not None):
            try:
                await self.report_updates(allow_expunge=_expunge_allowed(cmd))
            except (ConnectionError, TimeoutError):
                raise
            except Exception:
                # The command itself succeeded; updates will be retried at the next one.
                log.exception("%s reporting changes after %s failed", self.conn_id, cmd.NAME)
        if ok is not None:
            self.send(ok)

    async def _guard(
        self,
        tag: str,
        run: Callable[[], Awaitable[bytes | None]],
        cmd: c.Command | None = None,
    ) -> bytes | None:
        """Run a handler; return its tagged completion (to send after updates), or send
        the error reply and return None."""
        try:
            return await run()
        except KNOWN_FAILURES as e:
            status, code, text = reply_for(e)
            if isinstance(e, LimitReached) and e.mailbox_full and self.announced is not None:
                for line in self.announced.mark_full():
                    self.untagged(line)
            self.send(wire.tagged(tag, status, text, code))
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            name = cmd.NAME if cmd is not None else "AUTHENTICATE"
            log.exception("%s %s failed", self.conn_id, name)
            self.send(
                wire.tagged(tag, "NO", "Internal error, the command was not executed", "SERVERBUG")
            )
        return None

    # ------------------------------------------------------------------ change reporting

    async def start_pump(self) -> None:
        """Subscribe to the account's changes (once, at login)."""
        assert self.account is not None
        changes = self._changes = self.services.changes.subscribe(self.account.id)
        listen: Callable[[Callable[[Change], None]], None] | None
        listen = getattr(changes, "listen", None)
        if listen is not None:
            # Recorded as published: no pump task to wake per session per change.
            listen(self._record)
            self._listening = True
        else:
            self._pump_task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        assert self._changes is not None
        async for change in self._changes:
            self._record(change)

    def _record(self, change: Change) -> None:
        """Note one change in the selected view (and for NOTIFY); wake the session if
        it has something to report. Synchronous: it may run inside the bus's publish."""
        if isinstance(change, MailboxesChanged | Resync) and self.mailboxes is not None:
            self.mailboxes.invalidate()  # before anything else: no await in between
        view = self.selected.view if self.selected is not None else None
        try:
            notifier = self.notifier
            wake = notifier is not None and notifier.record(change)
            if view is not None and view.record(change):
                wake = True
            if view is not None:
                self.live.record(change, view.mailbox.id)
            if wake:
                # Woken on the next loop turn, not now: inside publish the command that
                # committed the change has not resumed yet, and its reply should not wait
                # behind the whole fan-out.
                if self._idle_waiting and self._push is not None:
                    if not self._push_queued:
                        self._push_queued = True
                        self._push.add(self)
                else:
                    asyncio.get_running_loop().call_soon(self._changed.set)
        except Exception:
            # Never let one bad event stop updates: log it and reload the view instead.
            log.exception("%s recording a change failed", self.conn_id)
            if view is not None:
                self._changed.set()
                with contextlib.suppress(Exception):  # must not break the publisher
                    view.record(Resync(change.account_id))

    async def _stop_pump(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(BaseException):
                await self._pump_task
            self._pump_task = None
        changes = self._changes
        self._changes = None
        if changes is not None:
            with contextlib.suppress(Exception):
                await changes.aclose()

    async def settle(self) -> None:
        """Let the pump record events the store already published (they are queued before
        the store call that caused them returns), so a command reports its own effects."""
        if self._listening:
            return  # recorded synchronously when published: nothing can be in flight
        changes = self._changes
        for _ in range(20):
            if changes is None or not changes.pending():
                break
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def report_updates(self, *, allow_expunge: bool) -> None:
        """Send untagged EXPUNGE (or VANISHED) / EXISTS / FETCH FLAGS for recorded changes,
        and HIGHESTMODSEQ again while expunges are held back (RFC 7162 §3.2); with NOTIFY
        set, first the STATUS/LIST responses about other mailboxes (RFC 5465)."""
        selected = self.selected
        notifier = self.notifier
        if notifier is not None:
            await self.settle()
            await notifier.report(self)
        if selected is None:
            self._changed.clear()
            return
        await self.settle()
        self._changed.clear()
        await selected.resync()
        view = selected.view
        top = view.max_uid
        updates = view.take_updates(allow_expunge=allow_expunge)
        self._queue_removed(updates, allow_expunge=allow_expunge)
        if updates.exists is not None:
            self.untagged(b"%d EXISTS" % updates.exists)
            if not self.rev2:
                # RFC 3501 §7.3.2: new messages this session takes as \Recent.
                self.untagged(b"%d RECENT" % await selected.claim_recent())
            if notifier is not None and view.max_uid > top:
                await notifier.new_in_selected(
                    self, view.uids_for_uid_set([(top + 1, view.max_uid)])
                )
        # RFC 5465 §5.1: a selected group without FlagChange takes no flag changes.
        wanted = notifier is None or notifier.selected_flags
        self._queue_flag_updates(updates.flags if wanted else [])
        if len(self.live):
            # RFC 5267 §4.3.3: after EXISTS, so new sequence numbers in ADDTO are valid.
            for tag, live, change in await self.live.refresh(selected):
                items = self.live_fetch.get(tag)
                if items:
                    # RFC 5465 §7: new messages that join are fetched, after EXISTS and
                    # before the ADDTO; not those that join by a flag change (SHOULD NOT).
                    fresh = [u for _, uids in change.added for u in uids if u > top]
                    await self._fetch_uids(fresh, items)
                number = _same if live.by_uid else functools.partial(_seq_of, view.seq_of)
                self.untagged(esearch.update(tag, live, change, number))

    def _queue_removed(self, updates: Updates, *, allow_expunge: bool) -> None:
        """EXPUNGE (or VANISHED) for what `take_updates` removed; "$" forgets them."""
        self.report_expunged(Removed(updates.expunged, updates.vanished))
        if allow_expunge and self.saved_search and updates.expunged:
            view = self.require_selected().view
            self.saved_search = [u for u in self.saved_search if view.seq_of(u) is not None]

    def _queue_flag_updates(self, flags: list[tuple[int, FlagRow]]) -> None:
        """FETCH FLAGS for flag changes, then HIGHESTMODSEQ while expunges are held back."""
        for seq, row in flags:
            self.untagged(self.flags_fetch(seq, row, with_uid=True))
        view = self.require_selected().view
        if self.condstore and view.has_expunges:
            # RFC 7162 §3.2: MODSEQs went out while expunges with lower ones are held back;
            # the client's safe HIGHESTMODSEQ is below them.
            high = view.reported_highestmodseq
            self.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % high)

    async def _fetch_uids(self, uids: list[int], items: tuple[c.FetchItem, ...]) -> None:
        """Untagged FETCH of `uids` as a UID FETCH would answer it (the FETCH handler,
        reached through the router; its tagged completion is for no command: dropped)."""
        if not uids:
            return
        ranges = tuple(c.SeqRange(u, u) for u in uids)
        cmd = c.Fetch("*", uid=True, sequence_set=c.SequenceSet(ranges), items=items)
        handler = self.router.handler(cmd)
        if handler is not None:
            await handler(self, cmd)

    # ------------------------------------------------------------------ IDLE push

    async def idle_wait(self) -> bytes | None:
        """`read_or_change` for IDLE (RFC 2177): while suspended here, the push batch may
        write this session's updates directly (`push_idle`) instead of waking it."""
        self._idle_waiting = True
        try:
            return await self.read_or_change()
        finally:
            self._idle_waiting = False

    def push_idle(self) -> None:
        """The push batch's turn for this session (`server.imap.push`): write the
        recorded changes now when nothing stands in the way, else wake the task, which
        reports them through `report_updates`."""
        self._push_queued = False
        if not (self._idle_waiting and self._write_direct()):
            self._changed.set()

    def _write_direct(self) -> bool:
        r"""`report_updates(allow_expunge=True)` without awaiting, for a session waiting
        in IDLE (RFC 2177: any untagged response may be sent then). False, with nothing
        done, when it would need an await: NOTIFY set, output already queued, a reload
        of the view, a \Recent claim only the store can settle, or update contexts to
        re-evaluate (RFC 5267 §4.3: their query runs in `report_updates`)."""
        selected = self.selected
        if selected is None or self.notifier is not None or self._out or self._drain_due:
            return False
        if len(self.live):
            return False
        view = selected.view
        if view.needs_resync:
            return False
        if not self.rev2 and not selected.recent_settles_locally(view.pending_top):
            return False
        updates = view.take_updates(allow_expunge=True)
        self._queue_removed(updates, allow_expunge=True)
        if updates.exists is not None:
            self.untagged(b"%d EXISTS" % updates.exists)
            if not self.rev2:
                self.untagged(b"%d RECENT" % selected.settle_recent())  # RFC 3501 §7.3.2
        self._queue_flag_updates(updates.flags)
        data = b"".join(self._out)
        self._out.clear()
        self._out_size = 0
        if not self.stream.write_nowait(data):
            self._drain_due = True  # the task drains (or finds the connection gone)
            self._changed.set()
        return True

    async def _push_notifications(self) -> None:
        """A change arrived while no command runs and NOTIFY is set: report it now
        (RFC 5465 §1), the selected mailbox's too when NOTIFY names it (§5.1)."""
        notifier = self.notifier
        if notifier is None or self.notification_overflow():
            self._changed.clear()
            return
        push = notifier.selected_push
        try:
            if push is not None and self.selected is not None and self.conn.state is State.SELECTED:
                await self.report_updates(allow_expunge=push)
            else:
                self._changed.clear()
                await self.settle()
                await notifier.report(self)
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            log.exception("%s reporting notifications failed", self.conn_id)

    def notification_overflow(self) -> bool:
        """RFC 5465 §5.8: NOTIFY is set and its client has left more than
        `notify_max_unread` bytes unread. Rather than queue more without bound, say so
        (NOTIFICATIONOVERFLOW) and act as after NOTIFY NONE; True when that just happened.
        What is recorded for the selected mailbox stays and goes out as without NOTIFY."""
        if self.notifier is None or self.stream.unsent() <= self.config.notify_max_unread:
            return False
        self.notifier = None
        self.untagged(b"OK [NOTIFICATIONOVERFLOW] Too many notifications, NOTIFY is off")
        return True

    def announce_flags(self, flags: Collection[str]) -> None:
        """Send an updated FLAGS (and PERMANENTFLAGS) first when `flags`, about to be
        shown in a FETCH, hold a keyword the client was not told of (RFC 9051 §7.3.5)."""
        if self.announced is not None:
            for line in self.announced.new(flags):
                self.untagged(line)

    def flags_fetch(self, seq: int, row: FlagRow, *, with_uid: bool) -> bytes:
        """``n FETCH (FLAGS ...)``, with MODSEQ once CONDSTORE is enabled (RFC 7162 §3.1:
        unsolicited ones too); a new keyword in it is announced first (queued now, so
        before the line the caller queues)."""
        flags = row.flags
        if self.selected is not None and row.uid in self.selected.view.recent:
            flags = flags | RECENT_FLAG  # RFC 3501 §2.3.2, IMAP4rev1 sessions only
        self.announce_flags(flags)
        uid = b" UID %d" % row.uid if with_uid else b""
        modseq = b" MODSEQ (%d)" % row.modseq if self.condstore else b""
        return b"%d FETCH (FLAGS %s%s%s)" % (seq, wire.flag_list(flags), uid, modseq)

    # ------------------------------------------------------------------ auth

    async def _auth_response(self, ev: c.AuthenticateResponse) -> bytes | None:
        return await self.router.auth_response(self, ev)

    def changes_pending(self) -> bool:
        """Change-bus events are waiting to be taken (True when unknown): the mailbox
        name cache is only trusted when this is False."""
        return self._changes is None or self._changes.pending() > 0

    def select(self, selected: SelectedMailbox | None) -> None:
        """Make `selected` the session's selected mailbox (None: none); "$" is forgotten
        with the old one (RFC 5182 §2.1), and so are the update contexts (RFC 5267 §4.3:
        updates cease when the mailbox is no longer selected)."""
        self.selected = selected
        self.saved_search = []
        self.live = LiveResults()
        self.live_fetch = {}
        self.announced = None if selected is None else AnnouncedFlags(read_only=selected.read_only)

    def new_selected(self, mailbox: Mailbox, *, read_only: bool) -> SelectedMailbox:
        return SelectedMailbox(self.services.store, mailbox, read_only=read_only)

    async def end_login(self) -> None:
        """UNAUTHENTICATE (RFC 8437 §3): forget the user, the selected mailbox, "$" and
        what ENABLE turned on, and stop following the account's changes; TLS and
        compression stay, since they belong to the connection."""
        await self._stop_pump()
        self.select(None)
        self._release_account()
        self.stream.logged_out()
        self.mailboxes = None
        self.enabled.clear()
        self.notifier = None
        self._changed.clear()
        self.conn.unauthenticated()

    async def login_as(self, account: Account) -> None:
        """Become `account`'s session: TooManySessions (nothing changed) when it holds
        as many from this address as it may ([limits] max_connections_per_account)."""
        self.services.sessions.acquire(account.id, self.stream.info.peer_ip)
        self.stream.logged_in()
        self.account = account
        self.mailboxes = AccountMailboxes(
            self.services.store, account.id, changes_pending=self.changes_pending
        )
        self.conn.authenticated()
        await self.start_pump()


def _same(uid: int) -> int:
    """A UID context names its members by UID."""
    return uid


def _seq_of(seq_of: Callable[[int], int | None], uid: int) -> int:
    """The sequence number a member has now (it is known to the view)."""
    return seq_of(uid) or 0
