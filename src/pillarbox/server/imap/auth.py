"""Commands of any state and of the not-authenticated state, plus ENABLE and IDLE.

CAPABILITY, NOOP, CHECK, LOGOUT, ID (RFC 2971), STARTTLS, LOGIN, AUTHENTICATE PLAIN with
SASL-IR (RFC 4616, RFC 4959), ENABLE (RFC 5161), IDLE (RFC 2177).

Must not: check a password itself (services.auth does, with its per-IP slow-down), or
accept a cleartext password where `plaintext_allowed` says no (RFC 9051 §11.1,
RFC 8314 §3): CAPABILITY then shows LOGINDISABLED and no AUTH=PLAIN.
"""

from __future__ import annotations

from pillarbox.proto.errors import RemoteProtocolError
from pillarbox.proto.imap import commands as c
from pillarbox.server.imap import wire
from pillarbox.server.imap.errors import CommandNo
from pillarbox.server.imap.session import Session
from pillarbox.services.account_sessions import TooManySessions
from pillarbox.services.errors import AuthFailed


async def capability(s: Session, cmd: c.Capability) -> bytes:
    s.untagged(b"CAPABILITY " + s.capabilities().encode())
    return wire.tagged(cmd.tag, "OK", "CAPABILITY completed")


async def noop(s: Session, cmd: c.Noop | c.Check) -> bytes:
    # Updates are reported by the dispatcher after every successful command.
    return wire.tagged(cmd.tag, "OK", f"{cmd.NAME} completed")


async def logout(s: Session, cmd: c.Logout) -> bytes:
    s.untagged(b"BYE Logging out")
    s.conn.logged_out()
    return wire.tagged(cmd.tag, "OK", "LOGOUT completed")


async def id_(s: Session, cmd: c.Id) -> bytes:
    # RFC 2971 §3.1: answer with our own parameters.
    fields = b" ".join(wire.string(k) + b" " + wire.string(v) for k, v in _server_id())
    s.untagged(b"ID (" + fields + b")")
    return wire.tagged(cmd.tag, "OK", "ID completed")


def _server_id() -> tuple[tuple[str, str], ...]:
    return (("name", "Pillarbox"), ("vendor", "Pillarbox"))


async def starttls(s: Session, cmd: c.StartTls) -> bytes | None:
    if not s.stream.tls_available:
        raise CommandNo("TLS is not available")
    s.send(wire.tagged(cmd.tag, "OK", "Begin TLS negotiation now"))
    await s.flush()
    await s.stream.start_tls()
    s.conn.start_tls()
    return None


def _refuse_plaintext(s: Session) -> None:
    if not s.plaintext_ok():
        # RFC 9051 §6.2.3, RFC 5530 PRIVACYREQUIRED.
        raise CommandNo("Use STARTTLS or the implicit-TLS port first", "PRIVACYREQUIRED")


async def _authenticate(s: Session, tag: str, user: str, password: str) -> bytes:
    try:
        account = await s.services.auth.authenticate(user, password, s.stream.info.peer_ip)
    except AuthFailed:
        raise CommandNo("Invalid credentials", "AUTHENTICATIONFAILED") from None
    try:
        await s.login_as(account)
    except TooManySessions as e:
        # As Dovecot: say why and close (RFC 9051 §7.1.5 BYE, §7.1 UNAVAILABLE).
        s.untagged(b"BYE [UNAVAILABLE] " + wire.safe_text(str(e)))
        s.conn.logged_out()
        return wire.tagged(tag, "NO", "Too many connections", "UNAVAILABLE")
    return wire.tagged(tag, "OK", "Logged in", "CAPABILITY " + s.capabilities())


async def login(s: Session, cmd: c.Login) -> bytes:
    _refuse_plaintext(s)
    return await _authenticate(s, cmd.tag, cmd.username, cmd.password)


async def authenticate(s: Session, cmd: c.Authenticate) -> bytes | None:
    if cmd.mechanism != "PLAIN":
        raise CommandNo("Unsupported authentication mechanism", "CANNOT")
    _refuse_plaintext(s)
    if cmd.initial_response is None:
        s.send(s.conn.auth_challenge(b""))  # RFC 4616: empty challenge
        return None
    return await finish_plain(s, cmd.tag, cmd.initial_response)


async def finish_plain(s: Session, tag: str, data: bytes) -> bytes:
    """RFC 4616 §2: [authzid] NUL authcid NUL passwd."""
    parts = data.split(b"\x00")
    if len(parts) != 3:
        return wire.tagged(tag, "BAD", "Malformed PLAIN response")
    try:
        authzid, authcid, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        return wire.tagged(tag, "BAD", "Malformed PLAIN response")
    if authzid and authzid.strip().lower() != authcid.strip().lower():
        # No proxy authorization: acting as someone else is refused (RFC 4616 §2).
        raise CommandNo("Authorization identity not allowed", "AUTHORIZATIONFAILED")
    return await _authenticate(s, tag, authcid, password)


ENABLEABLE = frozenset({"IMAP4REV2", "UTF8=ACCEPT", "CONDSTORE", "QRESYNC"})


async def enable(s: Session, cmd: c.Enable) -> bytes:
    """RFC 5161 §3.1: answer ``* ENABLED`` with what was newly enabled. QRESYNC implies
    CONDSTORE (RFC 7162 §3.2.3), which is then on without being named in ENABLED."""
    new: list[str] = []
    for name in cmd.capabilities:
        if name in ENABLEABLE and name not in s.enabled and name not in new:
            new.append(name)
    for name in new:
        if name in ("CONDSTORE", "QRESYNC"):
            s.enable_condstore()  # HIGHESTMODSEQ of a selected mailbox (RFC 7162 §3.1)
        s.enabled.add(name)
    if new:
        s.conn.enabled(new)
    names = {"IMAP4REV2": "IMAP4rev2"}
    s.untagged(b"ENABLED" + b"".join(b" " + names.get(n, n).encode() for n in new))
    return wire.tagged(cmd.tag, "OK", "ENABLE completed")


async def idle(s: Session, cmd: c.Idle) -> bytes | None:
    """RFC 2177: report changes as they happen until DONE."""
    s.send(s.conn.idle_accepted())
    await s.report_updates(allow_expunge=True)
    await s.flush()
    while True:
        data = await s.idle_wait()
        if data is None:
            if s.notifier is not None and not s.notification_overflow():
                # RFC 5465 §4, §5.8: as between commands, NOTIFY's pushes do not wait for
                # the client to take them; what it leaves unread is bounded instead.
                await s.report_updates(allow_expunge=True)
                s.flush_nowait()
                continue
            await s.report_updates(allow_expunge=True)
            await s.flush()
            continue
        s.conn.receive_data(data)
        try:
            ev = s.conn.next_event()
        except RemoteProtocolError as e:
            s.send(e.reply_hint)
            return None
        if ev is c.NEED_DATA:
            continue
        if isinstance(ev, c.Done):
            return wire.tagged(cmd.tag, "OK", "IDLE terminated")
        if isinstance(ev, c.ConnectionClosed):
            s.conn.logged_out()
        return None
