"""Issue 12's failure paths end to end, as alice sees them in her INBOX.

alice@a.test submits to A (a Pillarbox on 127.0.0.2, the MX of a.test in a DNS server on
loopback) on `submission` with STARTTLS and AUTH, and reads what comes back over IMAP.
The far side is, by test: B (a second Pillarbox on 127.0.0.3, the MX of b.test) refusing
an unknown user with 550 5.1.1; nobody at all (c.test's MX is 127.0.0.4, where nothing
listens) with the queue's timings shortened to seconds; or a smarthost requiring STARTTLS
and AUTH (tests/queue/peer.py on 127.0.0.1). Every report is parsed with Python's email
package as any mail client would (RFC 3464 multipart/report, RFC 3461 DSN parameters).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import email.utils
import smtplib
import ssl
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pillarbox.model import QueuedMessage, QueueOrigin, RecipientState
from pillarbox.server.tls import ensure_self_signed
from tests.dnsserver import DnsServer
from tests.e2e.conftest import RunningServer
from tests.e2e.mtas import imap_inbox, mta, shared_port, submit, wait_until
from tests.queue.peer import Peer

T = TypeVar("T")

A_IP, B_IP, DOWN_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"

# The queue in seconds, not hours. A failed attempt is retried after 0.5 s, then every
# second (the runner also polls once a second); the delay warning is due from 1.5 s and
# the entry expires at 6 s, so at least two attempts fall inside the warning's window
# even when a loaded machine makes the runner a second late.
FAST_QUEUE = {
    "retry_initial": 0.5,
    "retry_max": 1.0,
    "delay_warning": 1.5,
    "queue_lifetime": 6.0,
}


# --- reading a DSN -------------------------------------------------------------------------
@dataclass
class Dsn:
    """A delivery status notification as a mail client parses it."""

    message: EmailMessage
    per_message: Message  # the first block of message/delivery-status
    recipients: list[Message]  # one block per recipient
    returned: Message  # the original's header (text/rfc822-headers)


def parse_dsn(raw: bytes) -> Dsn:
    """Parse `raw` and check its RFC 3464 / RFC 6522 shape: multipart/report with
    report-type delivery-status; a human-readable part, message/delivery-status, and the
    returned header as text/rfc822-headers."""
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report", message["Content-Type"]
    assert message.get_param("report-type") == "delivery-status"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    blocks = [b for b in parts[1].get_payload() if isinstance(b, Message)]
    assert len(blocks) >= 2, parts[1]
    header = parts[2].get_payload(decode=True)
    assert isinstance(header, bytes)
    returned = email.message_from_bytes(header, policy=email.policy.default)
    return Dsn(message, blocks[0], blocks[1:], returned)


def field(block: Message, name: str) -> str:
    """A status field's value with the space after "type;" taken out ("rfc822;a@b")."""
    value = block[name]
    assert value is not None, f"no {name} in {list(block.items())}"
    return ";".join(p.strip() for p in str(value).split(";", 1))


def note(subject: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice <alice@a.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.').lower()}@a.test>"
    message.set_content("Hello.")
    return message


def inbox(a: RunningServer) -> list[bytes]:
    return imap_inbox(a, A_IP, "alice@a.test")


def wait_inbox(a: RunningServer, count: int, timeout: float = 30.0) -> list[bytes]:
    """alice's INBOX once it holds `count` messages (fails if it ever holds more)."""

    def probe() -> list[bytes] | None:
        messages = inbox(a)
        assert len(messages) <= count, f"{len(messages)} messages, expected {count}"
        return messages if len(messages) == count else None

    return wait_until(probe, f"{count} message(s) in alice's INBOX", timeout)


def queue(server: RunningServer) -> list[QueuedMessage]:
    entries: list[QueuedMessage] = server.call(server.services.queue.list)
    return entries


# --- a smarthost in its own thread ---------------------------------------------------------
class PeerThread:
    """tests/queue/peer.py's Peer on its own event loop in a thread, for blocking tests."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="peer", daemon=True)
        self.thread.start()

        async def start() -> Peer:
            return await Peer(**kwargs).start()

        self.peer = self.run(start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.run(self.peer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def server_tls(tmp: Path, hostname: str) -> ssl.SSLContext:
    cert, key = ensure_self_signed(tmp / "peer-tls", hostname)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def a_and_b(tmp_path: Path, dns_server: DnsServer) -> Iterator[tuple[RunningServer, RunningServer]]:
    """A (a.test, alice) and B (b.test, bob), each the MX of its domain, default timings."""
    port = shared_port(A_IP, B_IP)
    a = mta(tmp_path, A_IP, "a.test", port, dns_server)
    try:
        b = mta(tmp_path, B_IP, "b.test", port, dns_server)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.fixture
def a_fast(tmp_path: Path, dns_server: DnsServer) -> Iterator[RunningServer]:
    """A with FAST_QUEUE timings; c.test's MX is mx.c.test at 127.0.0.4, on A's delivery
    port, where nothing listens (the port was free on 127.0.0.4 too)."""
    port = shared_port(A_IP, DOWN_IP)
    a = mta(tmp_path, A_IP, "a.test", port, dns_server, **FAST_QUEUE)
    dns_server.add("c.test", "MX", "10 mx.c.test.")
    dns_server.add("mx.c.test", "A", DOWN_IP)
    try:
        yield a
    finally:
        a.stop()


# --- 1. the destination refuses the recipient -------------------------------------------
def test_refused_recipient_bounces_to_the_senders_inbox(
    a_and_b: tuple[RunningServer, RunningServer],
) -> None:
    """B answers RCPT with 550 5.1.1 for an unknown user: A does not retry, and alice
    finds a "failed" DSN in her INBOX over IMAP, from MAILER-DAEMON, naming the recipient
    (Final-Recipient rfc822;nobody@b.test), Action failed, Status 5.1.1 and B's reply as
    the SMTP diagnostic, with Remote-MTA mx.b.test, the Reporting-MTA mx.a.test, and her
    message's header returned; the queue is empty afterwards."""
    a, _b = a_and_b
    submit(a, A_IP, "alice@a.test", note("Hello nobody", "nobody@b.test"))

    [raw] = wait_inbox(a, 1)
    dsn = parse_dsn(raw)
    assert dsn.message["From"].addresses[0].addr_spec == "MAILER-DAEMON@mx.a.test"
    assert dsn.message["To"].addresses[0].addr_spec == "alice@a.test"
    assert dsn.message["Auto-Submitted"] == "auto-replied"
    assert field(dsn.per_message, "Reporting-MTA") == "dns;mx.a.test"
    [rcpt] = dsn.recipients
    assert field(rcpt, "Final-Recipient") == "rfc822;nobody@b.test"
    assert field(rcpt, "Action") == "failed"
    assert field(rcpt, "Status") == "5.1.1"
    assert field(rcpt, "Diagnostic-Code").startswith("smtp;550 5.1.1 "), rcpt["Diagnostic-Code"]
    assert field(rcpt, "Remote-MTA") == "dns;mx.b.test"
    assert rcpt["Original-Recipient"] is None  # no ORCPT was given
    assert dsn.returned["Subject"] == "Hello nobody"
    assert dsn.returned["Message-ID"] == "<hello.nobody@a.test>"
    wait_until(lambda: queue(a) == [], "the queue emptied", timeout=10)


# --- 2. the destination is down ------------------------------------------------------------
def test_unreachable_destination_warns_then_bounces_after_expiry(a_fast: RunningServer) -> None:
    """Nothing listens at c.test's MX: the entry is deferred and retried (its attempt
    count grows, the last error names the refused connection); once it is older than
    `delay_warning` alice gets one "delayed" DSN (Action delayed, Status 4.4.1, a
    Will-Retry-Until at the entry's expiry), and at `queue_lifetime` one "failed" DSN
    (Action failed, Status 4.4.1 — the actual problem, as RFC 3463 §3.5 asks rather than
    4.4.7 — with "delivery time expired" and the last error in the diagnostic), in that
    order; then the queue is empty. No peer ever answered, so neither diagnostic is typed
    "smtp" (RFC 3464 §2.3.6), neither names a Remote-MTA (§2.3.5), and the text says no
    host "said" anything."""
    a = a_fast
    started = time.monotonic()
    submit(a, A_IP, "alice@a.test", note("Hello c", "someone@c.test"))
    [entry] = queue(a)
    attempts_seen: set[int] = set()

    def both_reports() -> list[bytes] | None:
        for e in queue(a):
            assert e.id == entry.id, "only alice's message is ever queued"
            attempts_seen.add(e.attempts)
            if e.attempts:
                assert "refused" in e.last_error.lower(), e.last_error
        messages = inbox(a)
        return messages if len(messages) == 2 else None

    delayed_raw, failed_raw = wait_until(both_reports, "two DSNs", timeout=30)
    wait_until(lambda: queue(a) == [], "the queue emptied", timeout=10)
    elapsed = time.monotonic() - started
    assert max(attempts_seen) >= 2, attempts_seen  # deferred and retried
    assert elapsed >= FAST_QUEUE["queue_lifetime"] - 0.5  # not bounced before expiry
    assert len(inbox(a)) == 2  # nothing more came

    delayed = parse_dsn(delayed_raw)
    assert delayed.message["Subject"].startswith("Delayed Mail")
    [rcpt] = delayed.recipients
    assert field(rcpt, "Final-Recipient") == "rfc822;someone@c.test"
    assert field(rcpt, "Action") == "delayed"
    assert field(rcpt, "Status") == "4.4.1"
    assert rcpt["Remote-MTA"] is None
    diagnostic = field(rcpt, "Diagnostic-Code")  # our words, not a peer's (RFC 3464 §2.3.6)
    assert diagnostic.startswith("X-Pillarbox;") and "refused" in diagnostic.lower(), diagnostic
    retry_until = email.utils.parsedate_to_datetime(rcpt["Will-Retry-Until"])
    arrival = email.utils.parsedate_to_datetime(delayed.per_message["Arrival-Date"])
    lifetime = (retry_until - arrival).total_seconds()
    assert abs(lifetime - FAST_QUEUE["queue_lifetime"]) <= 1, (arrival, retry_until)
    assert delayed.returned["Subject"] == "Hello c"
    text = delayed.message.get_body(("plain",))
    assert text is not None and "said:" not in text.get_content()

    failed = parse_dsn(failed_raw)
    assert failed.message["Subject"].startswith("Undelivered Mail")
    [rcpt] = failed.recipients
    assert field(rcpt, "Final-Recipient") == "rfc822;someone@c.test"
    assert field(rcpt, "Action") == "failed"
    assert field(rcpt, "Status") == "4.4.1"
    assert rcpt["Remote-MTA"] is None
    diagnostic = field(rcpt, "Diagnostic-Code")
    assert diagnostic.startswith("X-Pillarbox;delivery time expired; last error: "), diagnostic
    assert "refused" in diagnostic.lower()
    assert rcpt["Will-Retry-Until"] is None
    assert failed.returned["Subject"] == "Hello c"


def test_a_bounce_that_cannot_be_delivered_is_not_bounced(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    """No bounce loop (RFC 3461 §6.1, RFC 5321 §4.5.5): carol@c.test mails fwd@a.test,
    an alias forwarding to someone@c.test, and c.test is down. The forwarded entry
    expires and its "failed" DSN is queued to carol with the null sender (origin BOUNCE);
    c.test being down, that entry expires too, and no report about it is made: the queue
    ends empty, having held exactly those two entries."""
    port = shared_port(A_IP, DOWN_IP)
    timings = FAST_QUEUE | {"queue_lifetime": 2.0, "delay_warning": 0.0}
    a = mta(tmp_path, A_IP, "a.test", port, dns_server, **timings)
    try:
        dns_server.add("c.test", "MX", "10 mx.c.test.")
        dns_server.add("mx.c.test", "A", DOWN_IP)
        a.call(lambda: a.services.accounts.add_alias("fwd@a.test", ["someone@c.test"]))
        with smtplib.SMTP(A_IP, port, local_hostname="mx.c.test") as s:
            s.sendmail("carol@c.test", ["fwd@a.test"], b"Subject: hi\r\n\r\nHello.\r\n")
        seen: dict[int, tuple[str, QueueOrigin, tuple[str, ...]]] = {}

        def drained() -> bool:
            entries = queue(a)
            for e in entries:
                seen[e.id] = (e.sender, e.origin, tuple(r.address for r in e.recipients))
            assert len(seen) <= 2, f"a report about a report: {seen}"
            return len(seen) >= 2 and not entries

        wait_until(drained, "both entries expired", timeout=30)
        assert sorted(seen.values()) == [
            ("", QueueOrigin.BOUNCE, ("carol@c.test",)),
            ("carol@c.test", QueueOrigin.FORWARD, ("someone@c.test",)),
        ]
        assert inbox(a) == []
    finally:
        a.stop()


# --- 3. a smarthost ------------------------------------------------------------------------
def relayed_a(
    tmp_path: Path, dns: DnsServer, smarthost: PeerThread, password: str
) -> RunningServer:
    """A sending everything to `smarthost` (STARTTLS required, certificate not verified,
    AUTH as a-relay with `password`, read from a file)."""
    secret = tmp_path / "relay-password"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    return mta(
        tmp_path,
        A_IP,
        "a.test",
        shared_port(A_IP),
        dns,
        relay=f"127.0.0.1:{smarthost.peer.port}",
        relay_user="a-relay",
        relay_password_file=str(secret),
        relay_security="starttls",
        relay_tls_verify=False,
        retry_initial=0.2,
        retry_max=0.5,
    )


@pytest.fixture
def smarthost(tmp_path: Path) -> Iterator[PeerThread]:
    """An SMTP peer on 127.0.0.1 offering STARTTLS (self-signed) and AUTH PLAIN."""
    peer = PeerThread(
        host="127.0.0.1",
        tls=server_tls(tmp_path, "smarthost.test"),
        auth=("a-relay", "relay secret"),
    )
    try:
        yield peer
    finally:
        peer.stop()


OUTSIDE = ["x@one.test", "y@two.test", "z@three.test"]


def test_smarthost_with_auth_receives_everything(
    tmp_path: Path, dns_server: DnsServer, smarthost: PeerThread
) -> None:
    """With `[delivery] relay` set, a message to three external domains (none has an
    MX, A record or any DNS data) goes to the smarthost: every recipient, over TLS
    (STARTTLS before AUTH, AUTH PLAIN with the configured user and the password from the
    file, then MAIL), with alice's envelope sender; A asks the DNS
    nothing about the recipients' domains (no MX query at all), and the queue is empty."""
    a = relayed_a(tmp_path, dns_server, smarthost, "relay secret")
    try:
        submit(a, A_IP, "alice@a.test", note("Hello world", ", ".join(OUTSIDE)))
        smarthost.run(smarthost.peer.wait_for(1, timeout=30))
        wait_until(lambda: queue(a) == [], "the queue emptied", timeout=10)
        received = list(smarthost.peer.received)
        commands = list(smarthost.peer.commands)
        assert all(t.tls for t in received)
        assert all(t.mail.upper().startswith("MAIL FROM:<ALICE@A.TEST>") for t in received)
        rcpts = sorted(r.split("<", 1)[1].split(">", 1)[0] for t in received for r in t.rcpts)
        assert rcpts == sorted(OUTSIDE)
        assert b"Subject: Hello world" in received[0].data
        verbs = [c.split(" ", 1)[0].upper() for c in commands]
        assert verbs.index("STARTTLS") < verbs.index("AUTH") < verbs.index("MAIL"), verbs
        [auth] = [c for c in commands if c.upper().startswith("AUTH")]
        _mech, initial = auth.split()[1:]
        assert base64.b64decode(initial).split(b"\0")[1:] == [b"a-relay", b"relay secret"]
        queried = [(name, rtype) for name, rtype in dns_server.queries]
        assert not [q for q in queried if q[1] == "MX"], queried
        assert not [q for q in queried if q[0].endswith(("one.test", "two.test", "three.test"))]
        assert inbox(a) == []
    finally:
        a.stop()


def test_wrong_relay_password_defers_and_never_bounces(
    tmp_path: Path, dns_server: DnsServer, smarthost: PeerThread
) -> None:
    """The smarthost refuses A's credentials (535 5.7.8): the message stays queued,
    retried (attempts grow), every recipient still pending, the last error saying that
    authentication failed; alice gets no DSN and the smarthost no message."""
    a = relayed_a(tmp_path, dns_server, smarthost, "not the secret")
    try:
        submit(a, A_IP, "alice@a.test", note("Hello world", ", ".join(OUTSIDE)))
        [entry] = wait_until(
            lambda: [e for e in queue(a) if e.attempts >= 2] or None, "two attempts", 30
        )
        assert "authentication failed" in entry.last_error, entry.last_error
        assert "535" in entry.last_error
        assert [r.state for r in entry.recipients] == [RecipientState.QUEUED] * 3
        assert smarthost.peer.received == []
        assert any(c.upper().startswith("AUTH") for c in smarthost.peer.commands)
        assert inbox(a) == []
    finally:
        a.stop()


# --- 4. the DSN extension (RFC 3461) ------------------------------------------------------
def test_dsn_parameters_reach_the_report(a_and_b: tuple[RunningServer, RunningServer]) -> None:
    """alice submits with RET=HDRS ENVID=abc123 and NOTIFY=FAILURE
    ORCPT=rfc822;nobody@b.test; B refuses the recipient, and the DSN carries
    Original-Envelope-Id abc123 (RFC 3464 §2.2.1) and Original-Recipient
    rfc822;nobody@b.test (§2.3.1) besides the Final-Recipient, and returns the header only."""
    a, _b = a_and_b
    submit(
        a,
        A_IP,
        "alice@a.test",
        note("Hello envid", "nobody@b.test"),
        mail_options=["RET=HDRS", "ENVID=abc123"],
        rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;nobody@b.test"],
    )
    [raw] = wait_inbox(a, 1)
    dsn = parse_dsn(raw)
    assert field(dsn.per_message, "Original-Envelope-Id") == "abc123"
    [rcpt] = dsn.recipients
    assert field(rcpt, "Original-Recipient") == "rfc822;nobody@b.test"
    assert field(rcpt, "Final-Recipient") == "rfc822;nobody@b.test"
    assert field(rcpt, "Action") == "failed"
    assert field(rcpt, "Status") == "5.1.1"
    assert dsn.returned["Subject"] == "Hello envid"
    assert b"Hello." not in raw  # RET=HDRS: the body does not come back


def test_notify_never_sends_no_report(a_and_b: tuple[RunningServer, RunningServer]) -> None:
    """With NOTIFY=NEVER a refused recipient gets no DSN: once A is done with the entry
    (it is gone from the queue, and a report would have been delivered before that),
    alice's INBOX is empty."""
    a, _b = a_and_b
    submit(
        a,
        A_IP,
        "alice@a.test",
        note("Hello never", "nobody@b.test"),
        rcpt_options=["NOTIFY=NEVER"],
    )
    wait_until(lambda: queue(a) == [], "the queue emptied", timeout=30)
    assert inbox(a) == []
