"""The SMTP front-end: drives `proto.smtp.ServerConnection` over a listener `Stream`.

Serves four listeners (`app.LISTENERS`): ``smtp`` (MX, RFC 5321: no AUTH, mail only for
local recipients), ``submission`` (RFC 6409: STARTTLS, then AUTH before MAIL),
``submissions`` (RFC 8314 implicit TLS, AUTH before MAIL) and ``lmtp`` (RFC 2033, for an
MTA in front of us: LHLO, no AUTH, local recipients only like ``smtp``, and after the
data one reply per accepted RCPT, from `IncomingMessage.finish_each`, so that one
recipient over quota does not fail the others). Policy lives in `services`
(`delivery`, `submission`, `auth`); this module turns events into service calls and
service answers into replies, through one table (`SERVICE_ERROR_CODES`, used by
`reply_for`): a `ServiceError`'s class gives the basic reply code, the error its enhanced
status code and text; anything unexpected is logged with the connection id and answered
``451 4.3.0`` without its text.

Replies to pipelined commands (RFC 2920) are collected and written when the core needs
more input, so a pipelined group costs one write. A message body is streamed chunk by
chunk into the store's blob writer and never assembled in memory; the final ``250`` is
sent only after `IncomingMessage.finish` returns, i.e. after the store commit.

Must not: parse SMTP itself, check passwords, decide what is local, or touch asyncio
streams or ssl objects except through `Stream`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pillarbox.config import Config
from pillarbox.model import Account
from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.sasl import MECHANISMS, Challenge, SaslError, Step, server_mechanism
from pillarbox.proto.sasl import ServerMechanism as SaslMechanism
from pillarbox.proto.smtp import events as ev
from pillarbox.proto.smtp import responses as r
from pillarbox.proto.smtp.responses import Reply
from pillarbox.proto.smtp.server import Limits, ServerConnection, State
from pillarbox.rules.printable import printable_ascii
from pillarbox.server.listener import Handler, Stream
from pillarbox.services.context import Services
from pillarbox.services.delivery import Envelope, IncomingMessage, Recipient, with_protocol
from pillarbox.services.errors import (
    AuthFailed,
    OverQuota,
    Rejected,
    ServiceError,
    StorageUnavailable,
    TempFailure,
)
from pillarbox.services.submission import SenderNotOwned

log = logging.getLogger("pillarbox.smtp")

SUBMISSION_LISTENERS = frozenset({"submission", "submissions"})
IMPLICIT_TLS_LISTENERS = frozenset({"submissions"})
# Commands an unauthenticated client may send on a submission port before we hang up:
# enough for EHLO, STARTTLS, EHLO, a few failed AUTHs, and not a dictionary attack.
MAX_COMMANDS_BEFORE_AUTH = 30
# Message content counts as progress (re-arming the idle deadline) once this much more
# of it has arrived: a client trickling one byte at a time cannot hold a session open.
PROGRESS_BYTES = 32 * 1024

AUTH_NOT_AVAILABLE = Reply.of(503, "5.5.1", "AUTH not available on this port")
INVALID_AUTH_DATA = Reply.of(501, "5.5.2", "Invalid authentication data")
TOO_MANY_BEFORE_AUTH = Reply.of(421, "4.7.0", "Too many commands without authentication")
AUTHZID_REFUSED = Reply.of(535, "5.7.8", "Authentication credentials invalid")


# The basic reply code of each service error class (RFC 5321 §4.2.2, §4.2.3). The most
# specific class of an error that appears here wins, so a subclass needs a line only when
# its code differs from its parent's. A `ServiceError` with no class here is a bug,
# answered like any unexpected exception.
SERVICE_ERROR_CODES: dict[type[ServiceError], int] = {
    SenderNotOwned: 553,  # mailbox name not allowed: a sender the account may not use
    OverQuota: 552,  # exceeded storage allocation
    Rejected: 550,  # mailbox unavailable / not accepted
    TempFailure: 451,  # local error in processing, try again
}


def reply_for(exc: BaseException, conn_id: str) -> Reply:
    """The one table from service exceptions to SMTP replies."""
    if isinstance(exc, ServiceError):
        for cls in type(exc).__mro__:
            code = SERVICE_ERROR_CODES.get(cls)
            if code is not None:
                return Reply.of(code, exc.status, exc.text)
    if isinstance(exc, AuthFailed):
        return r.AUTH_FAILED
    if isinstance(exc, StorageUnavailable):
        log.warning("%s storage unavailable: %s", conn_id, exc)
        return r.LOCAL_ERROR  # 451 4.3.0 (RFC 3463 §3.4)
    log.error("%s unexpected error", conn_id, exc_info=exc)
    return r.LOCAL_ERROR


@dataclass(frozen=True, slots=True)
class Settings:
    listener: str
    hostname: str
    limits: Limits
    idle_timeout: float
    submission: bool
    implicit_tls: bool
    lmtp: bool = False


@dataclass(slots=True)
class Transaction:
    """Envelope being built between MAIL and the end of the message."""

    sender: str
    mail: ev.MailFrom
    allowed: frozenset[str] = frozenset()
    recipients: list[Recipient] = field(default_factory=list)
    message: IncomingMessage | None = None


class Session:
    """One SMTP connection."""

    def __init__(self, stream: Stream, services: Services, settings: Settings) -> None:
        self.stream = stream
        self.services = services
        self.settings = settings
        self.conn = ServerConnection(settings.limits, tls=settings.implicit_tls, lmtp=settings.lmtp)
        self.out = bytearray()
        self.helo = ""
        self.account: Account | None = None
        self.txn: Transaction | None = None
        self.sasl: SaslMechanism | None = None
        self.commands_before_auth = 0
        self.conn_id = stream.info.conn_id
        self.deadline = 0.0  # loop time by which the client must make progress
        self.content_since_progress = 0

    # --- I/O loop -------------------------------------------------------------------------
    def progress(self) -> None:
        """The client completed a command (or sent `PROGRESS_BYTES` of content): re-arm
        the idle deadline. RFC 5321 §4.5.3.2 timeouts bound each step, and a step is a
        command, not a read: a slow-loris client sending one byte per second must not
        keep a session (and its connection slot) forever."""
        self.deadline = asyncio.get_running_loop().time() + self.settings.idle_timeout
        self.content_since_progress = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            kind = "LMTP" if self.settings.lmtp else "ESMTP"
            self.reply(Reply.of(220, None, f"{self.settings.hostname} {kind} Pillarbox"))
            await self.flush()
            self.progress()
            while self.conn.state is not State.CLOSED:
                try:
                    remaining = self.deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError
                    data = await self.stream.read(remaining)
                except TimeoutError:
                    # RFC 5321 §4.5.3.2: we may close an idle connection, saying so.
                    self.out += self.conn.send(r.IDLE_TIMEOUT)
                    await self.flush()
                    return
                self.conn.receive_data(data)
                await self.pump()
        finally:
            await self.drop_transaction()

    def reply(self, reply: Reply) -> None:
        self.out += self.conn.send(reply)

    async def flush(self) -> None:
        """Write the pending replies. A client that stops reading them cannot hold the
        session either: the write must finish within the idle timeout (TimeoutError ends
        the session; the listener closes the connection)."""
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            async with asyncio.timeout(self.settings.idle_timeout):
                await self.stream.write(data)

    async def pump(self) -> None:
        """Handle every event the buffered input gives, then write the replies."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                if self.txn is not None and not conn.in_transaction:
                    await self.drop_transaction()
                self.out += exc.reply_hint
                if exc.fatal:
                    await self.flush()
                    return
                continue
            if event is ev.NEED_DATA:
                await self.flush()
                return
            if isinstance(event, ev.ConnectionClosed):
                await self.drop_transaction()
                return
            if isinstance(event, ev.BodyChunk):
                self.content_since_progress += len(event.data)
                if self.content_since_progress >= PROGRESS_BYTES:
                    self.progress()
            try:
                await self.handle(event)
            except Exception as exc:  # one bad command must not end the session
                # Socket and TLS failures end the connection (the listener logs them);
                # so does anything after which there is no command left to answer.
                if isinstance(exc, OSError) or not conn.awaiting_reply:
                    raise
                failure = reply_for(exc, self.conn_id)
                while conn.awaiting_reply:  # LMTP: once per recipient (RFC 2033 §4.2)
                    self.reply(failure)
                if not conn.in_transaction:
                    await self.drop_transaction()
            if not isinstance(event, ev.BodyChunk):
                self.progress()
            if conn.state is State.CLOSED:
                await self.flush()
                return

    async def drop_transaction(self) -> None:
        txn, self.txn = self.txn, None
        if txn is not None and txn.message is not None:
            await txn.message.abort()

    # --- events ---------------------------------------------------------------------------
    async def handle(self, event: ev.Event) -> None:
        if (
            self.settings.submission
            and self.account is None
            and not isinstance(event, ev.BodyChunk | ev.AuthResponse)
        ):
            self.commands_before_auth += 1
            if self.commands_before_auth > MAX_COMMANDS_BEFORE_AUTH:
                self.reply(TOO_MANY_BEFORE_AUTH)
                return
        match event:
            case ev.Hello():
                await self.drop_transaction()
                # Echoed in the reply, the Received field and logs: printable only.
                self.helo = printable_ascii(event.domain)
                self.reply(self.hello_reply(event))
            case ev.StartTls():
                await self.on_starttls()
            case ev.Auth():
                await self.on_auth(event)
            case ev.AuthResponse():
                await self.on_auth_response(event)
            case ev.MailFrom():
                await self.on_mail(event)
            case ev.RcptTo():
                await self.on_rcpt(event)
            case ev.DataStart():
                self.start_message()
                self.reply(r.START_MAIL_INPUT)
            case ev.Bdat():
                if self.txn is not None and self.txn.message is None:
                    self.start_message()
            case ev.BodyChunk():
                if self.txn is not None and self.txn.message is not None:
                    await self.txn.message.write(event.data)
            case ev.ChunkEnd():
                message = self.txn.message if self.txn is not None else None
                if message is not None and message.error is not None:
                    self.reply(reply_for(message.error, self.conn_id))
                    await self.drop_transaction()
                else:
                    self.reply(Reply.of(250, "2.0.0", f"{event.size} octets received"))
            case ev.EndOfData():
                await self.on_end_of_data()
            case ev.Reset():
                await self.drop_transaction()
                self.reply(r.RESET_OK)
            case ev.Noop():
                self.reply(r.OK)
            case ev.Vrfy():
                self.reply(r.CANNOT_VRFY)
            case ev.Help():
                self.reply(r.HELP)
            case ev.Quit():
                await self.drop_transaction()
                self.reply(r.CLOSING)
            case _:  # pragma: no cover - ConnectionClosed is handled by pump
                raise AssertionError(f"unhandled event {event!r}")

    def auth_offered(self) -> bool:
        auth = self.services.auth
        return self.settings.submission and auth.plaintext_allowed(
            tls=self.stream.tls_active, loopback=self.stream.info.is_loopback
        )

    def hello_reply(self, event: ev.Hello) -> Reply:
        greeting = f"{self.settings.hostname} greets {self.helo[:64]}"
        if not event.extended:
            return Reply.of(250, None, greeting)
        lines = [
            greeting,
            "PIPELINING",  # RFC 2920
            f"SIZE {self.settings.limits.max_message_size}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "SMTPUTF8",  # RFC 6531
            "ENHANCEDSTATUSCODES",  # RFC 2034
            "CHUNKING",  # RFC 3030
        ]
        if not self.settings.lmtp:  # the LHLO reply (RFC 2033 §4.1) has no DSN
            lines.append("DSN")  # RFC 3461
        if self.stream.tls_available and not self.conn.tls:
            lines.append("STARTTLS")  # RFC 3207
        if self.settings.lmtp:
            return Reply(250, None, tuple(lines))  # and no AUTH or HELP
        if self.auth_offered() and self.account is None:
            lines.append("AUTH " + " ".join(MECHANISMS))  # RFC 4954
        lines.append("HELP")
        return Reply(250, None, tuple(lines))

    async def on_starttls(self) -> None:
        if not self.stream.tls_available:
            self.reply(r.TLS_NOT_AVAILABLE)
            return
        self.reply(r.READY_TO_START_TLS)
        await self.flush()
        await self.stream.start_tls()
        self.conn.tls_started()  # RFC 3207 §4.2: forget the plaintext session
        self.helo = ""
        self.account = None

    async def on_auth(self, event: ev.Auth) -> None:
        if not self.settings.submission:
            self.reply(AUTH_NOT_AVAILABLE)
            return
        if not self.auth_offered():
            self.reply(r.ENCRYPTION_REQUIRED)  # RFC 4954 §4, RFC 8314 §3
            return
        mechanism = server_mechanism(event.mechanism)
        if mechanism is None:
            self.reply(r.UNKNOWN_MECHANISM)
            return
        self.sasl = mechanism
        await self.sasl_step(lambda: mechanism.start(event.initial_response))

    async def on_auth_response(self, event: ev.AuthResponse) -> None:
        mechanism = self.sasl
        if event.cancelled or mechanism is None:
            self.sasl = None
            self.reply(r.AUTH_CANCELLED)
            return
        await self.sasl_step(lambda: mechanism.respond(event.data))

    async def sasl_step(self, step_fn: Callable[[], Step]) -> None:
        try:
            step = step_fn()
        except SaslError:
            self.sasl = None
            self.reply(INVALID_AUTH_DATA)
            return
        if isinstance(step, Challenge):
            self.reply(Reply.of(334, None, base64.b64encode(step.data).decode("ascii")))
            return
        self.sasl = None
        ip = self.stream.info.peer_ip
        try:
            account = await self.services.auth.authenticate(step.authcid, step.password, ip)
        except AuthFailed:
            # services.auth logged the IP and applied the delay; same reply either way.
            self.reply(r.AUTH_FAILED)
            return
        if step.authzid and step.authzid.lower() != account.address.lower():
            log.warning("%s refused authzid %r for %s", self.conn_id, step.authzid, ip)
            self.reply(AUTHZID_REFUSED)
            return
        self.account = account
        self.stream.logged_in()  # submission: no longer held to the pre-login deadline
        log.info("%s authenticated %s from %s", self.conn_id, account.address, ip)
        self.reply(r.AUTH_SUCCEEDED)

    async def on_mail(self, event: ev.MailFrom) -> None:
        await self.drop_transaction()
        allowed: frozenset[str] = frozenset()
        if self.settings.submission:
            if self.account is None:
                self.reply(r.AUTH_REQUIRED)  # RFC 4954 §6
                return
            allowed = await self.services.submission.check_sender(self.account, event.address)
        self.txn = Transaction(sender=event.address, mail=event, allowed=allowed)
        self.reply(Reply.of(250, "2.1.0", "Sender OK"))

    async def on_rcpt(self, event: ev.RcptTo) -> None:
        assert self.txn is not None
        recipient = await self.services.delivery.resolve(
            event.address,
            relay_allowed=self.settings.submission and self.account is not None,
            notify=event.notify,
            orcpt=event.orcpt,
        )
        self.txn.recipients.append(recipient)
        self.reply(Reply.of(250, "2.1.5", "Recipient OK"))

    def start_message(self) -> None:
        txn = self.txn
        assert txn is not None
        envelope = Envelope(
            sender=txn.sender,
            recipients=tuple(txn.recipients),
            helo=self.helo,
            client_ip=self.stream.info.peer_ip,
            protocol=with_protocol(
                extended=self.conn.extended,
                tls=self.stream.tls_active,
                authenticated=self.account is not None,
                utf8=txn.mail.smtputf8,
                lmtp=self.settings.lmtp,
            ),
            tls=self.stream.tls_description,
            ret=txn.mail.ret,
            envid=txn.mail.envid,
        )
        if self.settings.submission and self.account is not None:
            txn.message = self.services.submission.begin(self.account, txn.allowed, envelope)
        else:
            inbound = self.services.inbound_auth
            checked = not self.settings.lmtp and inbound.applies_to(envelope.client_ip)
            txn.message = self.services.delivery.begin(
                envelope, inbound=inbound if checked else None
            )

    async def on_end_of_data(self) -> None:
        txn, self.txn = self.txn, None
        assert txn is not None and txn.message is not None
        if self.settings.lmtp:
            await self.on_lmtp_end_of_data(txn)
            return
        try:
            result = await txn.message.finish()
        except Exception as exc:
            self.reply(reply_for(exc, self.conn_id))
            return
        self.reply(Reply.of(250, "2.0.0", f"OK id={result.trace_id}"))

    async def on_lmtp_end_of_data(self, txn: Transaction) -> None:
        """RFC 2033 §4.2: one reply per accepted RCPT, in RCPT order."""
        assert txn.message is not None
        outcomes = await txn.message.finish_each()
        for recipient, outcome in zip(txn.recipients, outcomes, strict=True):
            if isinstance(outcome, ServiceError):
                self.reply(reply_for(outcome, self.conn_id))
            else:
                text = f"<{recipient.address}> delivered id={outcome.trace_id}"
                self.reply(Reply.of(250, "2.0.0", text))


def make_handler(listener_name: str, services: Services, config: Config) -> Handler:
    """The per-connection coroutine for one of the SMTP listeners."""
    smtp = config.smtp
    settings = Settings(
        listener=listener_name,
        hostname=config.server.hostname,
        limits=Limits(
            max_line=smtp.max_line_length,
            max_message_size=smtp.max_message_size,
            max_header_size=smtp.max_header_size,
            max_body_line=smtp.max_body_line_length,
            max_recipients=smtp.max_recipients,
            max_errors=smtp.max_bad_commands,
            normalize_bare_lf=smtp.bare_newline == "normalize",
        ),
        idle_timeout=smtp.idle_timeout,
        submission=listener_name in SUBMISSION_LISTENERS,
        implicit_tls=listener_name in IMPLICIT_TLS_LISTENERS,
        lmtp=listener_name == "lmtp",
    )

    async def handle(stream: Stream) -> None:
        await Session(stream, services, settings).run()

    return handle


__all__ = ["Session", "Settings", "make_handler", "reply_for"]
