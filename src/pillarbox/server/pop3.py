"""The POP3 front-end: listeners "pop3" (STLS, RFC 2595) and "pop3s" (implicit TLS).

Owns the session loop that joins a `Stream` (bytes, TLS, timeouts) to the sans-I/O core
`pillarbox.proto.pop3` (syntax and states) and to the services: `auth` checks passwords
and slows failures per IP, `pop` (`pillarbox.services.pop`) locks and snapshots the
maildrop and commits at QUIT. RFCs: 1939, 2449 (CAPA, response codes, PIPELINING), 2595,
5034 (AUTH PLAIN), 3206 (AUTH-RESP-CODE), 6856 (UTF8).

Must not do: parse commands (the core does), decide policy (services do), or show
exception text to a client. Service and store exceptions become replies through one
table (`_error_reply`); anything else is logged with the connection id and answered
``-ERR [SYS/TEMP]``.

Theory of operation: replies to pipelined commands are collected and written once the
core needs more data, so a pipelining client gets them in one write; RETR and TOP stream
the message file in chunks through `ChunkStuffer`/`TopFilter`, so a large message never
sits in memory. A connection that ends without QUIT (EOF, timeout, error) releases the
lock and commits nothing (RFC 1939 §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pillarbox.config import Config, Pop3Config
from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.pop3 import NEED_DATA, Limits, ServerConnection, State
from pillarbox.proto.pop3 import events as ev
from pillarbox.proto.pop3 import responses as r
from pillarbox.proto.sasl import (
    MECHANISMS,
    Challenge,
    SaslError,
    ServerMechanism,
    Step,
    server_mechanism,
)
from pillarbox.server.listener import Handler, Stream
from pillarbox.services.account_sessions import TooManySessions
from pillarbox.services.context import Services
from pillarbox.services.errors import (
    UNAVAILABLE_TEXT,
    AuthFailed,
    Rejected,
    StorageUnavailable,
    TempFailure,
)
from pillarbox.services.pop import Maildrop, MaildropInUse, NoSuchMessage

log = logging.getLogger("pillarbox.pop3")

_CHUNK = 256 * 1024
_FLUSH_AT = 64 * 1024  # pending pipelined replies are written once they reach this


def _error_reply(exc: Exception) -> bytes | None:
    """The one table from exception to reply; None means "unexpected" (log it)."""
    if isinstance(exc, MaildropInUse):
        return r.err(exc.text, "IN-USE")  # RFC 2449 §8.1.1
    if isinstance(exc, TooManySessions):
        return r.err(str(exc), "IN-USE")  # as Dovecot for mail_max_userip_connections
    if isinstance(exc, NoSuchMessage):
        return r.err(exc.text)
    if isinstance(exc, AuthFailed):
        return r.err("Authentication failed", "AUTH")  # RFC 3206 §4
    if isinstance(exc, TempFailure):
        return r.err(exc.text, "SYS/TEMP")  # RFC 3206 §4
    if isinstance(exc, StorageUnavailable):
        log.warning("POP3 command failed: %s", exc)
        return r.err(UNAVAILABLE_TEXT, "SYS/TEMP")  # RFC 3206 §4
    if isinstance(exc, Rejected):
        return r.err(exc.text, "SYS/PERM")
    return None


class _Close(Exception):
    """End the session now (after a fatal reply or a broken multi-line reply)."""


class Pop3Session:
    """One client connection; `run()` until it ends."""

    def __init__(self, stream: Stream, services: Services, config: Pop3Config) -> None:
        self.stream = stream
        self.services = services
        self.config = config
        self.conn = ServerConnection(
            Limits(max_line_length=config.max_line_length),
            tls_active=stream.tls_active,
            stls_available=stream.tls_available,
        )
        self.maildrop: Maildrop | None = None
        self._account_id: int | None = None  # counted in services.sessions while set
        self._out: list[bytes] = []
        self._out_size = 0
        self._sasl: ServerMechanism | None = None  # an AUTH exchange waiting for a response

    @property
    def conn_id(self) -> str:
        return self.stream.info.conn_id

    # --- output -------------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)

    async def _flush(self) -> None:
        """Write what is queued. A client that stops reading cannot hold the session: the
        write must finish within the idle timeout (TimeoutError ends the session)."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            async with asyncio.timeout(self.config.idle_timeout):
                await self.stream.write(data)

    # --- loop ---------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.stream.write(r.ok("Pillarbox POP3 server ready"))  # RFC 1939 §4
            await self._loop()
        except _Close:
            pass
        finally:
            await self._flush_quietly()
            if self.maildrop is not None:
                await self.maildrop.close()  # releases the lock; commits nothing
            if self._account_id is not None:
                self.services.sessions.release(self._account_id, self.stream.info.peer_ip)

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self._flush()

    async def _loop(self) -> None:
        # RFC 1939 §3: the inactivity timer bounds each command, not each read, so a
        # client trickling a byte at a time (slow loris) is closed all the same; it is
        # re-armed only when a command has been handled.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.idle_timeout
        while True:
            try:
                event = self.conn.next_event()
            except RemoteProtocolError as exc:
                self._sasl = None  # an error ends any AUTH exchange (RFC 5034 §4)
                self._queue(exc.reply_hint)
                if exc.fatal:
                    return
                continue
            if event is NEED_DATA:
                await self._flush()
                try:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError
                    data = await self.stream.read(remaining)
                except TimeoutError:
                    # RFC 1939 §3: an idle session is closed without entering UPDATE.
                    self._queue(r.err("Idle for too long, closing connection"))
                    return
                self.conn.receive_data(data)
                continue
            if isinstance(event, ev.ConnectionClosed):
                return
            await self._dispatch(event)
            deadline = loop.time() + self.config.idle_timeout
            if self.conn.state in (State.UPDATE, State.CLOSED):
                return
            if self._out_size >= _FLUSH_AT:
                await self._flush()

    async def _dispatch(self, event: ev.Event) -> None:
        try:
            await self._handle(event)
        except _Close:
            raise
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:
            reply = _error_reply(exc)
            if reply is None:
                log.exception("%s POP3 command %s failed", self.conn_id, type(event).__name__)
                reply = r.err("Internal error, try again later", "SYS/TEMP")
            self._queue(reply)

    # --- commands -----------------------------------------------------------------

    async def _handle(self, event: ev.Event) -> None:
        match event:
            case ev.Capa():
                self._queue(r.capabilities(self._capabilities()))
            case ev.User():
                if self._plaintext_refused():
                    return
                self._queue(r.ok("Send PASS"))  # never says whether the user exists
            case ev.Pass(user=user, password=password):
                if self._plaintext_refused():
                    return
                await self._login(user, password)
            case ev.Auth():
                await self._auth(event)
            case ev.AuthResponse():
                await self._auth_response(event)
            case ev.Stls():
                await self._stls()
            case ev.Utf8():
                self._queue(r.ok("UTF8 enabled"))
            case ev.Quit():
                await self._quit()
            case _:
                await self._transaction(event)

    def _capabilities(self) -> list[str]:
        # RFC 2449 §5/§6; capabilities of AUTHORIZATION are also listed in TRANSACTION.
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if self.conn.stls_available and self.conn.state is State.AUTHORIZATION:
            caps.append("STLS")
        if self._plaintext_ok():
            caps += ["USER", "SASL " + " ".join(MECHANISMS)]
        caps += [
            "UTF8 USER",  # RFC 6856 §2: UTF-8 in USER/PASS too
            "EXPIRE NEVER",  # RFC 2449 §6.7: the server never removes mail by itself
            "LOGIN-DELAY 0",  # RFC 2449 §6.5: no minimum delay between logins
            "IMPLEMENTATION Pillarbox",
        ]
        return caps

    def _plaintext_ok(self) -> bool:
        return self.services.auth.plaintext_allowed(
            tls=self.conn.tls_active, loopback=self.stream.info.is_loopback
        )

    def _plaintext_refused(self) -> bool:
        if self._plaintext_ok():
            return False
        # RFC 8314 §3 / RFC 2595 §4: no passwords in clear; say how to fix it.
        self._queue(r.err("Plaintext authentication disallowed, use STLS first", "AUTH"))
        return True

    async def _login(self, user: str, password: str) -> None:
        ip = self.stream.info.peer_ip
        account = await self.services.auth.authenticate(user, password, ip)
        self.services.sessions.acquire(account.id, ip)  # TooManySessions: -ERR [IN-USE]
        try:
            self.maildrop = await self.services.pop.open(account)
        except BaseException:
            self.services.sessions.release(account.id, ip)
            raise
        self._account_id = account.id
        self.stream.logged_in()
        self.conn.authenticated()
        count, size = self.maildrop.stat()
        log.info("%s POP3 %s logged in, %d messages", self.conn_id, account.address, count)
        self._queue(r.ok(f"Maildrop locked and ready, {count} messages ({size} octets)"))

    async def _auth(self, event: ev.Auth) -> None:
        mechanism = server_mechanism(event.mechanism)
        if mechanism is None:
            self._queue(r.err("Unsupported authentication mechanism"))
            return
        if self._plaintext_refused():
            return
        await self._sasl_step(mechanism, lambda: mechanism.start(event.initial_response))

    async def _auth_response(self, event: ev.AuthResponse) -> None:
        mechanism, self._sasl = self._sasl, None
        if mechanism is None:  # pragma: no cover - the core only sends these after a challenge
            self._queue(r.err("No authentication in progress"))
            return
        if event.cancelled:
            self._queue(r.err("Authentication cancelled"))  # RFC 5034 §4
            return
        await self._sasl_step(mechanism, lambda: mechanism.respond(event.data))

    async def _sasl_step(self, mechanism: ServerMechanism, step: Callable[[], Step]) -> None:
        """Run one step of the shared SASL machine: challenge again, or log in."""
        try:
            result = step()
        except SaslError:
            self._queue(r.err("Malformed credentials", "AUTH"))
            return
        if isinstance(result, Challenge):
            self._sasl = mechanism
            self._queue(self.conn.auth_challenge(result.data))  # RFC 5034 §4 "+ base64"
            return
        if result.authzid and result.authzid.lower() != result.authcid.lower():
            # No proxy authorisation: acting as another user is refused (RFC 4616 §2).
            self._queue(r.err("Authorization identity not allowed", "AUTH"))
            return
        await self._login(result.authcid, result.password)

    async def _stls(self) -> None:
        await self.stream.write(b"".join([*self._out, r.ok("Begin TLS negotiation")]))
        self._out.clear()
        self._out_size = 0
        try:
            await self.stream.start_tls()
        except Exception as exc:
            log.info("%s STLS handshake failed: %r", self.conn_id, exc)
            raise _Close() from None
        self.conn.tls_started()

    async def _quit(self) -> None:
        if self.conn.state is State.CLOSED or self.maildrop is None:
            self._queue(r.ok("Pillarbox POP3 server signing off"))
            return
        # RFC 1939 §6: UPDATE state; an error here still ends the session. The lock goes
        # before the +OK: a client that reconnects on reading it (to another worker or
        # node) must find the maildrop free, not wait out our connection's teardown.
        try:
            left = await self.maildrop.commit()
        finally:
            await self.maildrop.close()
        self._queue(r.ok(f"Pillarbox POP3 server signing off ({left} messages left)"))

    async def _transaction(self, event: ev.Event) -> None:
        drop = self.maildrop
        assert drop is not None  # the core allows these only in TRANSACTION
        match event:
            case ev.Stat():
                count, size = drop.stat()
                self._queue(r.ok(f"{count} {size}"))
            case ev.List(msg=None):
                live = drop.listing()
                lines = [f"{e.number} {e.size}" for e in live]
                self._queue(r.multiline(r.ok(f"{len(live)} messages"), lines))
            case ev.List(msg=int(number)):
                entry = drop.entry(number)
                self._queue(r.ok(f"{entry.number} {entry.size}"))
            case ev.Uidl(msg=None):
                lines = [f"{e.number} {e.unique_id}" for e in drop.listing()]
                self._queue(r.multiline(r.ok("Unique-ID listing follows"), lines))
            case ev.Uidl(msg=int(number)):
                entry = drop.entry(number)
                self._queue(r.ok(f"{entry.number} {entry.unique_id}"))
            case ev.Retr(msg=number):
                size = drop.entry(number).size
                await self._send_message(number, r.ok(f"{size} octets"), None)
            case ev.Top(msg=number, lines=lines):
                await self._send_message(number, r.ok("Top of message follows"), lines)
            case ev.Dele(msg=number):
                drop.delete(number)
                self._queue(r.ok(f"Message {number} deleted"))
            case ev.Noop():
                self._queue(r.ok())
            case ev.Rset():
                drop.reset()
                count, size = drop.stat()
                self._queue(r.ok(f"Maildrop has {count} messages ({size} octets)"))
            case _:  # pragma: no cover - every event type is handled above
                raise AssertionError(f"unhandled event {event!r}")

    async def _send_message(self, number: int, first: bytes, top: int | None) -> None:
        """Stream RETR/TOP from the message file, dot-stuffed, in chunks."""
        assert self.maildrop is not None
        reader = await self.maildrop.open_message(number)  # may raise: nothing sent yet
        try:
            self._queue(first)
            stuffer = r.ChunkStuffer()
            top_filter = r.TopFilter(top) if top is not None else None
            try:
                while True:
                    chunk = await reader.read(_CHUNK)
                    if not chunk:
                        break
                    if top_filter is not None:
                        chunk = top_filter.feed(chunk)
                    self._queue(stuffer.feed(chunk))
                    if self._out_size >= _FLUSH_AT:
                        await self._flush()
                    if top_filter is not None and top_filter.done:
                        break
                if top_filter is not None:
                    self._queue(stuffer.feed(top_filter.end()))
            except OSError:
                # Half a multi-line reply is on the wire: the only honest end is closing.
                log.exception("%s reading message %d failed", self.conn_id, number)
                raise _Close() from None
            self._queue(stuffer.end())
        finally:
            await reader.close()


def make_handler(listener_name: str, services: Services, config: Config) -> Handler:
    """The per-connection coroutine for the "pop3" and "pop3s" listeners."""

    async def handle(stream: Stream) -> None:
        await Pop3Session(stream, services, config.pop3).run()

    return handle
