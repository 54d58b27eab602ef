"""One outbound SMTP session (RFC 5321) and the pool that keeps sessions for reuse.

Theory of operation: `Session.open` connects (to an address `mx.Router` checked, or to
the relay by name), reads the greeting, says EHLO with our host name (HELO if EHLO is
refused), upgrades with STARTTLS when offered, says EHLO again (RFC 3207 §4.2), and logs
in when the relay needs it. `Session.send` runs one transaction and returns one
`RecipientOutcome` per recipient: 2xx delivered (or relayed, below), 4xx deferred
(state QUEUED, the runner tries the next MX host), 5xx failed. A network error or
timeout defers every recipient without a final answer and marks the session broken.

TLS. To MX hosts, STARTTLS is opportunistic and the certificate is not verified, as
MTAs do without DANE or MTA-STS (RFC 7435, RFC 8461 §1): MX host names come from
unauthenticated DNS, so a verified name proves nothing, and refusing self-signed
certificates would only push mail back to plain text. To the relay (`relay_security`
"tls": implicit TLS; "starttls": STARTTLS required, never plain text) the certificate is
verified against the system's CAs unless `relay_tls_verify` is off (a self-signed
smarthost on a private network, and our tests).

Extensions, by what the message and the peer need:
- SIZE=n (RFC 1870 §6) when offered;
- BODY=8BITMIME (RFC 6152) when the message has 8-bit octets and the peer offers it;
  an 8-bit message to a peer without it fails 5.6.3 (conversion needed, not done here);
- SMTPUTF8 (RFC 6531 §3.4) when an envelope address or the header is not ASCII; without
  it at the peer the recipients fail at once: 5.6.7 for a UTF-8 address (RFC 6531 §3.5,
  "non-ASCII addresses not permitted"), 5.6.9 for a UTF-8 header alone (RFC 6532 / RFC
  6531 §3.5, "UTF-8 header cannot be transferred");
- DSN (RFC 3461 §4): RET, ENVID, NOTIFY, ORCPT passed on when offered. When not, a
  recipient that asked for any NOTIFY is recorded RELAYED on 250 (RFC 3461 §4.1: the
  next hop will not report; `services.outbound` sends the "relayed" DSN if SUCCESS was
  asked).
aiosmtplib does not pipeline (RFC 2920): it waits for each reply; we accept the round
trips (a few per message on a reused connection) for replies matched to commands
without guesswork.

Must not: decide retries or bounces, or touch the queue (the runner records outcomes).
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from pillarbox.message import header_end
from pillarbox.model import QueuedRecipient, RecipientOutcome, RecipientState

log = logging.getLogger("pillarbox.queue")

QUIT_TIMEOUT = 5.0  # a goodbye is not worth waiting long for
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one session goes: `host` is the name (logs, SNI), `address` what we connect
    to (an IP for MX hosts, the name itself for the relay)."""

    host: str
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}[{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How to open sessions: our name, timeouts, TLS and credentials."""

    hostname: str  # EHLO name
    connect_timeout: float
    command_timeout: float
    implicit_tls: bool = False  # relay_security = "tls"
    require_tls: bool = False  # relay_security = "starttls": never plain text
    verify_tls: bool = False  # verify the certificate (relay only)
    username: str = ""
    password: str = ""
    source_address: str = ""  # bind outbound connections to this local address


@dataclass(frozen=True, slots=True)
class Transaction:
    """One message for some recipients of one queue entry."""

    sender: str
    recipients: tuple[QueuedRecipient, ...]
    data: bytes
    envid: str | None = None
    ret: str | None = None


class SessionError(Exception):
    """The session could not be opened; `status` is the RFC 3463 code (4.x.x: try
    another host or later; 5.x.x: the peer refused for good)."""

    def __init__(self, text: str, status: str = "4.4.1", *, answered: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.status = status
        # The peer replied (a refusal, a failed AUTH, no STARTTLS): a DSN names it as
        # Remote-MTA; not after a refused connection or a timeout (RFC 3464 §2.3.5).
        self.answered = answered


def reply_text(code: int, message: str) -> str:
    """A reply as one line: '550 5.1.1 No such user'."""
    return " ".join(f"{code} {message}".split())


def reply_status(code: int, message: str) -> str:
    """The enhanced status (RFC 3463) of a reply, or one derived from its code."""
    m = _ENHANCED.match(message)
    if m and m.group(1) == str(code)[0]:
        return m.group(0)
    return {2: "2.0.0", 4: "4.0.0", 5: "5.0.0"}.get(code // 100, "4.0.0")


def needs_smtputf8(tx: Transaction) -> tuple[bool, bool]:
    """(an envelope address needs it, the header needs it): RFC 6531 §3.2."""
    address = not tx.sender.isascii() or any(not r.address.isascii() for r in tx.recipients)
    header = not tx.data[: header_end(tx.data)].isascii()
    return address, header


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class Session:
    """An open, greeted (and, where possible, TLS-protected and logged-in) SMTP session."""

    def __init__(self, smtp: aiosmtplib.SMTP, endpoint: Endpoint, policy: SessionPolicy) -> None:
        self._smtp = smtp
        self.endpoint = endpoint
        self.policy = policy
        self.broken = False
        self.tls = False
        self.dirty = False  # a transaction was begun and not finished: RSET before reuse
        self.idle_since = time.monotonic()
        self.messages = 0

    @classmethod
    async def open(cls, endpoint: Endpoint, policy: SessionPolicy) -> Session:
        """Connect, greet, STARTTLS, log in. SessionError when this endpoint cannot be
        used now."""
        smtp = aiosmtplib.SMTP(
            hostname=endpoint.address,
            port=endpoint.port,
            local_hostname=policy.hostname,
            timeout=policy.command_timeout,
            use_tls=policy.implicit_tls,
            start_tls=False,
            tls_context=_tls_context(policy.verify_tls) if policy.implicit_tls else None,
            source_address=(policy.source_address, 0) if policy.source_address else None,
        )
        session = cls(smtp, endpoint, policy)
        try:
            await smtp.connect(timeout=policy.connect_timeout)
            session.tls = policy.implicit_tls
            await session._hello()
            if not policy.implicit_tls:
                if smtp.supports_extension("starttls"):
                    await smtp.starttls(
                        server_hostname=endpoint.host,
                        tls_context=_tls_context(policy.verify_tls),
                    )
                    session.tls = True
                    await session._hello()  # RFC 3207 §4.2: forget what was said before
                elif policy.require_tls:
                    raise SessionError(
                        f"{endpoint.host} does not offer STARTTLS", "4.7.0", answered=True
                    )
            if policy.username:
                await smtp.login(policy.username, policy.password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            # A wrong relay password is the operator's to fix: defer, never bounce.
            raise SessionError(
                f"authentication failed: {reply_text(exc.code, exc.message)}",
                "4.7.0",
                answered=True,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise SessionError(reply_text(exc.code, exc.message), "4.4.1", answered=True) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            smtp.close()
            raise SessionError(f"{endpoint}: {_network_reason(exc)}", "4.4.1") from None
        except SessionError:
            smtp.close()
            raise
        return session

    async def _hello(self) -> None:
        try:
            await self._smtp.ehlo()
        except aiosmtplib.SMTPHeloError:
            await self._smtp.helo()

    @property
    def extensions(self) -> dict[str, str]:
        return self._smtp.esmtp_extensions

    def supports(self, extension: str) -> bool:
        return self._smtp.supports_extension(extension)

    async def reset(self) -> bool:
        """RSET before reusing the session (RFC 5321 §4.1.1.5); False if it is no use."""
        if self.broken or not self._smtp.is_connected:
            self.broken = True
            return False
        try:
            reply = await self._smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.broken = True
            return False
        self.dirty = False
        return reply.code == 250

    async def close(self) -> None:
        """QUIT politely when the peer is still there; never raises."""
        try:
            if self._smtp.is_connected and not self.broken:
                await asyncio.wait_for(
                    self._smtp.quit(), min(self.policy.command_timeout, QUIT_TIMEOUT)
                )
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self._smtp.close()
            self.broken = True

    async def send(self, tx: Transaction) -> list[RecipientOutcome]:
        """Run one transaction; one outcome per recipient of `tx` (QUEUED: deferred)."""
        host = self.endpoint.host
        self.messages += 1

        def each(state: RecipientState, status: str, text: str) -> list[RecipientOutcome]:
            return [RecipientOutcome(r.position, state, status, text, host) for r in tx.recipients]

        address_utf8, header_utf8 = needs_smtputf8(tx)
        utf8 = address_utf8 or header_utf8
        if utf8 and not self.supports("smtputf8"):
            if address_utf8:  # RFC 6531 §3.5
                why = "5.6.7", f"{host} does not support SMTPUTF8, needed for a UTF-8 address"
            else:
                why = "5.6.9", f"{host} does not support SMTPUTF8, needed for a UTF-8 header"
            return each(RecipientState.FAILED, *why)
        eight_bit = not tx.data.isascii()
        if eight_bit and not utf8 and not self.supports("8bitmime"):
            # RFC 6152 §3: 8-bit content needs 8BITMIME; we do not downgrade to 7 bit.
            reason = f"{host} does not support 8BITMIME, needed for this 8-bit message"
            return each(RecipientState.FAILED, "5.6.3", reason)
        dsn = self.supports("dsn")
        mail_options: list[str] = []
        if self.supports("size"):
            mail_options.append(f"SIZE={len(tx.data)}")
        if eight_bit and self.supports("8bitmime"):
            mail_options.append("BODY=8BITMIME")
        if utf8:
            mail_options.append("SMTPUTF8")
        if dsn and tx.ret:
            mail_options.append(f"RET={tx.ret}")
        if dsn and tx.envid:
            mail_options.append(f"ENVID={tx.envid}")
        encoding = "utf-8" if utf8 else "ascii"
        timeout = self.policy.command_timeout
        outcomes: dict[int, RecipientOutcome] = {}
        accepted: list[QueuedRecipient] = []
        self.dirty = True
        try:
            try:
                await self._smtp.mail(
                    tx.sender, options=mail_options, encoding=encoding, timeout=timeout
                )
            except aiosmtplib.SMTPSenderRefused as exc:
                await self.reset()
                return each(
                    _state_of(exc.code),
                    reply_status(exc.code, exc.message),
                    reply_text(exc.code, exc.message),
                )
            for r in tx.recipients:
                rcpt_options: list[str] = []
                if dsn and r.notify:
                    rcpt_options.append(f"NOTIFY={r.notify}")
                if dsn and r.orcpt:
                    rcpt_options.append(f"ORCPT={r.orcpt}")
                try:
                    await self._smtp.rcpt(
                        r.address, options=rcpt_options, encoding=encoding, timeout=timeout
                    )
                except aiosmtplib.SMTPRecipientRefused as exc:
                    outcomes[r.position] = RecipientOutcome(
                        r.position,
                        _state_of(exc.code),
                        reply_status(exc.code, exc.message),
                        reply_text(exc.code, exc.message),
                        host,
                    )
                else:
                    accepted.append(r)
            if not accepted:
                await self.reset()
                return [outcomes[r.position] for r in tx.recipients]
            try:
                # RFC 5321 §4.5.3.2.6: wait 10 minutes for the reply to the final dot.
                reply = await self._smtp.data(tx.data, timeout=2 * timeout)
            except aiosmtplib.SMTPDataError as exc:
                self.dirty = False  # a reply to DATA or the dot ends the transaction
                if exc.code == 354:
                    self.dirty = True
                for r in accepted:
                    outcomes[r.position] = RecipientOutcome(
                        r.position,
                        _state_of(exc.code),
                        reply_status(exc.code, exc.message),
                        reply_text(exc.code, exc.message),
                        host,
                    )
                if self.dirty:
                    await self.reset()
                return [outcomes[r.position] for r in tx.recipients]
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.broken = True
            lost = f"lost connection with {self.endpoint}: {_network_reason(exc)}"
            for r in tx.recipients:
                outcomes.setdefault(
                    r.position,
                    RecipientOutcome(r.position, RecipientState.QUEUED, "4.4.2", lost, host),
                )
            return [outcomes[r.position] for r in tx.recipients]
        self.dirty = False
        status = reply_status(reply.code, reply.message)
        text = reply_text(reply.code, reply.message)
        for r in accepted:
            # RFC 3461 §4.1: without DSN at the next hop our report is the last one.
            state = RecipientState.RELAYED if (r.notify and not dsn) else RecipientState.DELIVERED
            outcomes[r.position] = RecipientOutcome(r.position, state, status, text, host)
        return [outcomes[r.position] for r in tx.recipients]


def _state_of(code: int) -> RecipientState:
    return RecipientState.FAILED if 500 <= code < 600 else RecipientState.QUEUED


_CONNECT_ERROR = re.compile(r"^Error connecting to \S+ on port \d+: (?:\[Errno \d+\] )?")


def _network_reason(exc: BaseException) -> str:
    """One short line: "connection refused", "timed out"... (aiosmtplib's connect errors
    repeat the address, which the caller already names)."""
    text = " ".join(str(exc).split())
    text = _CONNECT_ERROR.sub("", text)
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__


class Pool:
    """Open sessions, bounded per destination (a domain, or the relay) and in total,
    kept idle for `idle_timeout` for the next message to the same destination.

    `acquire(destination, endpoint)` returns an idle session to that endpoint (already
    RSET and checked) or None with a connection slot reserved for a new one; `release`
    gives either back. When a limit is reached, the longest-idle session that is in the
    way (another endpoint of the destination, or any other destination for the total)
    is closed to make room, so idle connections never starve busy ones."""

    def __init__(self, *, max_total: int, max_per_destination: int, idle_timeout: float) -> None:
        self.max_total = max_total
        self.max_per_destination = max_per_destination
        self.idle_timeout = idle_timeout
        self._open: dict[str, int] = {}
        self._idle: dict[str, list[Session]] = {}
        self._total = 0
        self._changed = asyncio.Condition()
        self._closing: set[asyncio.Task[None]] = set()
        self.opened = 0  # sessions opened in this pool's life (for tests and logs)

    @property
    def total(self) -> int:
        return self._total

    async def acquire(self, destination: str, endpoint: Endpoint | None = None) -> Session | None:
        """An idle session to `destination` (to `endpoint` if given), checked with RSET,
        or None with a slot reserved for a new session. Waits while the limits are
        reached and nothing idle can be closed to make room."""
        while True:
            async with self._changed:
                idle = self._idle.get(destination, [])
                session = next(
                    (s for s in reversed(idle) if endpoint is None or s.endpoint == endpoint),
                    None,
                )
                if session is not None:
                    idle.remove(session)
                else:
                    dest_full = self._open.get(destination, 0) >= self.max_per_destination
                    if not dest_full and self._total < self.max_total:
                        self._reserve(destination)
                        return None
                    victim = self._oldest_idle(destination if dest_full else None)
                    if victim is None:
                        await self._changed.wait()
                        continue
                    self._forget(victim[0])
                    self._close_later(victim[1])
                    continue
            # An idle session: check it outside the lock (RSET may take a round trip).
            if time.monotonic() - session.idle_since < self.idle_timeout and await session.reset():
                return session
            await session.close()
            async with self._changed:
                self._forget(destination)
                self._changed.notify_all()

    def _close_later(self, session: Session) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def take_idle(self, destination: str) -> Session | None:
        """An idle session to `destination` if one is open and still good, else None
        (and no slot reserved)."""
        while True:
            async with self._changed:
                idle = self._idle.get(destination)
                if not idle:
                    return None
                session = idle.pop()
            if time.monotonic() - session.idle_since < self.idle_timeout and await session.reset():
                return session
            await session.close()
            async with self._changed:
                self._forget(destination)
                self._changed.notify_all()

    def _reserve(self, destination: str) -> None:
        self._open[destination] = self._open.get(destination, 0) + 1
        self._total += 1

    def _forget(self, destination: str) -> None:
        self._open[destination] -= 1
        if not self._open[destination]:
            del self._open[destination]
        self._total -= 1

    def _oldest_idle(self, destination: str | None) -> tuple[str, Session] | None:
        """Take the longest-idle session (of `destination` only, if given)."""
        best: tuple[str, Session] | None = None
        for dest, sessions in self._idle.items():
            if destination is not None and dest != destination:
                continue
            for candidate in sessions:
                if best is None or candidate.idle_since < best[1].idle_since:
                    best = (dest, candidate)
        if best is not None:
            self._idle[best[0]].remove(best[1])
        return best

    async def release(self, destination: str, session: Session | None) -> None:
        """Give back the slot from `acquire`, with the session to keep (None or a broken
        session: the slot is freed)."""
        async with self._changed:
            if session is not None and not session.broken:
                session.idle_since = time.monotonic()
                self._idle.setdefault(destination, []).append(session)
            else:
                self._forget(destination)
            self._changed.notify_all()
        if session is not None and session.broken:
            await session.close()

    async def expire_idle(self) -> None:
        """Close sessions idle longer than `idle_timeout` (the runner calls this often)."""
        now = time.monotonic()
        expired: list[Session] = []
        async with self._changed:
            for dest, sessions in list(self._idle.items()):
                for s in [s for s in sessions if now - s.idle_since >= self.idle_timeout]:
                    sessions.remove(s)
                    self._forget(dest)
                    expired.append(s)
            if expired:
                self._changed.notify_all()
        for s in expired:
            await s.close()

    async def close(self) -> None:
        """Close every idle session (sessions in use are closed by their users)."""
        async with self._changed:
            idle = [(d, s) for d, ss in self._idle.items() for s in ss]
            self._idle.clear()
            for dest, _ in idle:
                self._forget(dest)
            self._changed.notify_all()
        await asyncio.gather(*(s.close() for _, s in idle), *self._closing)


def destinations(recipients: Sequence[QueuedRecipient]) -> dict[str, list[QueuedRecipient]]:
    """Recipients grouped by their (canonical, lower-case) domain."""
    groups: dict[str, list[QueuedRecipient]] = {}
    for r in recipients:
        groups.setdefault(r.address.rpartition("@")[2].lower(), []).append(r)
    return groups
