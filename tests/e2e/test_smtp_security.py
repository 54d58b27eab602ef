"""SMTP abuse end to end over raw sockets: the open-relay matrix, SMTP smuggling,
STARTTLS command injection, oversize messages (with and without SIZE), BDAT, and every
limit (recipients, line and header length, errors, commands before AUTH, idle timeout,
connections per IP). Each refusal has the right code and leaves the server healthy."""

from __future__ import annotations

import base64
import smtplib
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import RawSmtp, client_tls, mailbox, queue

Connect = Callable[..., RawSmtp]


@pytest.fixture
def connect(server_factory: Callable[..., RunningServer]) -> Iterator[Connect]:
    """Open raw SMTP connections: connect(server, "smtp"). After the test they are closed
    and each server has seen them go before it stops (this fixture is torn down first,
    so no session is cut off mid-TLS by the shutdown)."""
    opened: list[tuple[RawSmtp, RunningServer, str]] = []

    def factory(server: RunningServer, listener: str, *, tls: bool = False) -> RawSmtp:
        raw = RawSmtp(server.port(listener), tls=tls)
        opened.append((raw, server, listener))
        return raw

    yield factory
    for raw, _, _ in opened:
        raw.close()
    for _, server, listener in opened:
        wait_idle(server, listener)


def wait_idle(server: RunningServer, listener: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until the listener has no open connection left."""
    deadline = time.monotonic() + timeout

    async def idle() -> bool:
        return int(server.app.listeners[listener].active_connections) == 0

    while not server.call(idle):
        assert time.monotonic() < deadline, f"{listener} connections did not close"
        time.sleep(0.01)  # poll interval of a bounded wait for a condition


MSG = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: t\r\n\r\nhello\r\n"

# Classic open-relay probes (RFC 2505 §2.3 and the usual relay-test suites). None of them
# may be accepted by the MX for anything but a local mailbox.
RELAY_TRICKS = [
    "victim@remote.test",
    "VICTIM@REMOTE.TEST",
    "victim@Remote.Test",
    "victim%remote.test@example.test",
    "victim%remote.test@[127.0.0.1]",
    "remote.test!victim@example.test",
    "example.test!victim@remote.test",
    '"victim@remote.test"@example.test',
    '"victim%remote.test"@example.test',
    '"victim"@remote.test',
    "@example.test:victim@remote.test",
    "@example.test,@other.test:victim@remote.test",
    "victim@remote.test.",
    "victim@example.test.remote.test",
    "victim@[127.0.0.1]",
    "victim@[IPv6:::1]",
    "victim@localhost",
    "victim@mail.example.test",
    "victim@exämple.test",
    "victim@xn--exmple-cua.test",
    "victim@remote.test@example.test",
    "victim%remote.test",
    "victim@remote.test%example.test",
]


@pytest.mark.parametrize("address", RELAY_TRICKS)
def test_open_relay_matrix_refused(connect: Connect, server: RunningServer, address: str) -> None:
    """The MX refuses every relay trick at RCPT with a 5xx; nothing is queued."""
    raw = connect(server, "smtp")
    assert raw.cmd(b"EHLO relay.test").startswith(b"250")
    assert raw.cmd(b"MAIL FROM:<spammer@remote.test> SMTPUTF8").startswith(b"250")
    reply = raw.cmd(f"RCPT TO:<{address}>".encode())
    assert reply[:1] == b"5", reply
    assert raw.cmd(b"DATA")[:3] in (b"554", b"503")
    assert raw.cmd(b"QUIT").startswith(b"221")
    assert queue(server) == []


def test_orcpt_cannot_relay(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.sendmail(
            "s@remote.test", ["bob@example.test"], MSG, rcpt_options=["ORCPT=rfc822;v@remote.test"]
        )
    assert queue(server) == [] and len(mailbox(server, "bob@example.test")) == 1


def open_transaction(raw: RawSmtp) -> None:
    assert raw.cmd(b"EHLO c.test").startswith(b"250")
    assert raw.cmd(b"MAIL FROM:<a@remote.test>").startswith(b"250")
    assert raw.cmd(b"RCPT TO:<bob@example.test>").startswith(b"250")


@pytest.mark.parametrize("mode", ["normalize", "reject"])
@pytest.mark.parametrize("marker", [b"\n.\n", b"\r.\r", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"])
def test_smtp_smuggling_defeated(
    connect: Connect, server_factory: Callable[..., RunningServer], marker: bytes, mode: str
) -> None:
    """A bare-LF/CR end marker does not end DATA, so the smuggled second message is not
    a transaction, whichever `smtp.bare_newline`. With "normalize" a bare-LF marker is
    message text (the one message is delivered, smuggled lines and all, to its one
    recipient); a bare CR, or any bare line ending with "reject", refuses the message
    (554 5.6.0)."""
    server = server_factory(smtp={"bare_newline": mode})
    raw = connect(server, "smtp")
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    raw.send(
        b"Subject: one\r\n\r\nfirst" + marker + b"MAIL FROM:<admin@example.test>\r\n"
        b"RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n"
    )
    bare_cr = b"\r" in marker.replace(b"\r\n", b"")
    accepted = mode == "normalize" and not bare_cr
    assert raw.reply().startswith(b"250 2.0.0" if accepted else b"554 5.6.0")
    assert raw.cmd(b"NOOP").startswith(b"250")
    raw.close()
    assert mailbox(server, "alice@example.test") == []
    stored = mailbox(server, "bob@example.test")
    if accepted:
        assert len(stored) == 1
        assert stored[0].endswith(
            b"first\r\n\r\nMAIL FROM:<admin@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
            b"DATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
        )
    else:
        assert stored == []


def test_starttls_injection_defeated(connect: Connect, server: RunningServer) -> None:
    """Commands pipelined with STARTTLS in the plaintext are dropped (CVE-2011-0411):
    after the handshake the session starts over and no reply to them ever arrives."""
    raw = connect(server, "smtp")
    raw.send(
        b"EHLO c.test\r\nSTARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
    )
    assert raw.reply().startswith(b"250")
    assert raw.reply().startswith(b"220")
    assert isinstance(raw.sock, socket.socket)
    raw.sock = client_tls().wrap_socket(raw.sock)
    assert raw.cmd(b"RCPT TO:<bob@example.test>").startswith(b"503 5.5.1")
    ehlo = raw.cmd(b"EHLO c.test")
    assert ehlo.startswith(b"250") and b"STARTTLS" not in ehlo
    assert raw.cmd(b"MAIL FROM:<a@remote.test>").startswith(b"250")


def test_oversize_refused(connect: Connect, server_factory: Callable[..., RunningServer]) -> None:
    """SIZE is announced; too big a SIZE is refused at MAIL, and a sender that ignores
    SIZE is refused after its data (552 5.3.4), for DATA and BDAT; the session lives on."""
    server = server_factory(smtp={"max_message_size": 10_000})
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "10000"
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("a@remote.test", ["bob@example.test"], MSG + b"x" * 20_000)
        assert info.value.smtp_code == 552
    raw = connect(server, "smtp")
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    raw.send(MSG + (b"y" * 900 + b"\r\n") * 30 + b".\r\n")
    assert raw.reply().startswith(b"552 5.3.4")
    assert raw.cmd(b"RSET").startswith(b"250")
    open_transaction(raw)
    raw.send(b"BDAT 20000 LAST\r\n" + b"z" * 19_998 + b"\r\n")
    assert raw.reply().startswith(b"552 5.3.4")
    assert raw.cmd(b"NOOP").startswith(b"250")
    assert mailbox(server, "bob@example.test") == []


def test_bdat_pipelined(connect: Connect, server: RunningServer) -> None:
    """CHUNKING (RFC 3030): pipelined BDAT chunks build one message."""
    raw = connect(server, "smtp")
    raw.send(
        b"EHLO c.test\r\nMAIL FROM:<a@remote.test> BODY=8BITMIME\r\nRCPT TO:<bob@example.test>\r\n"
        b"BDAT 22\r\nSubject: chunked\r\n\r\nhe" + b"BDAT 7 LAST\r\nllo\r\n\r\n"
    )
    replies = [raw.reply() for _ in range(5)]
    assert replies[3].startswith(b"250 2.0.0 22 octets")
    assert replies[4].startswith(b"250 2.0.0 OK id=")
    (stored,) = mailbox(server, "bob@example.test")
    assert stored.endswith(b"Subject: chunked\r\n\r\nhello\r\n\r\n")


def test_limits(connect: Connect, server_factory: Callable[..., RunningServer]) -> None:
    """Recipients per message (452 4.5.3), command line length (500 5.5.2), header size
    (552 5.3.4), body line length (554 5.6.0), and too many errors (421, closed)."""
    server = server_factory(
        smtp={
            "max_recipients": 3,
            "max_line_length": 512,
            "max_header_size": 1000,
            "max_body_line_length": 2000,
            "max_bad_commands": 3,
        }
    )
    raw = connect(server, "smtp")
    open_transaction(raw)
    for _ in range(2):
        assert raw.cmd(b"RCPT TO:<alice@example.test>").startswith(b"250")
    assert raw.cmd(b"RCPT TO:<alice@example.test>").startswith(b"452 4.5.3")
    assert raw.cmd(b"NOOP " + b"x" * 600).startswith(b"500 5.5.2")
    assert raw.cmd(b"DATA").startswith(b"354")
    raw.send(b"Subject: " + b"h" * 1200 + b"\r\n\r\nbody\r\n.\r\n")
    assert raw.reply().startswith(b"552 5.3.4")
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    raw.send(b"Subject: s\r\n\r\n" + b"b" * 3000 + b"\r\n.\r\n")
    assert raw.reply().startswith(b"554 5.6.0")
    # 452 and 500 above were errors 1 and 2; refused messages do not count
    assert raw.cmd(b"BOGUS").startswith(b"500")
    assert raw.cmd(b"BOGUS").startswith(b"421 4.7.0")
    assert raw.closed_by_server()
    # the server is fine
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as client:
        client.sendmail("a@remote.test", ["bob@example.test"], MSG)


def test_commands_before_auth_limited(connect: Connect, server: RunningServer) -> None:
    raw = connect(server, "submission")
    replies = [raw.cmd(b"NOOP") for _ in range(31)]
    assert all(r.startswith(b"250") for r in replies[:30])
    assert replies[30].startswith(b"421 4.7.0")
    assert raw.closed_by_server()


def test_idle_timeout(connect: Connect, server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(smtp={"idle_timeout": 0.5})
    raw = connect(server, "smtp")
    assert raw.reply().startswith(b"421 4.4.2")  # waits on the server's own words
    assert raw.closed_by_server()


def test_connections_per_ip(connect: Connect, server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(limits={"max_connections_per_ip": 2})
    first, second = connect(server, "smtp"), connect(server, "smtp")
    third = connect(server, "smtp")
    assert third.greeting.startswith(b"421 4.7.0")
    assert first.cmd(b"NOOP").startswith(b"250") and second.cmd(b"NOOP").startswith(b"250")


def test_plaintext_auth_needs_tls(
    connect: Connect, server_factory: Callable[..., RunningServer]
) -> None:
    """With plain-text passwords refused outside TLS, AUTH is neither offered nor
    accepted before STARTTLS (538 5.7.11), and works after it."""
    server = server_factory(auth={"allow_plaintext_loopback": False})
    raw = connect(server, "submission")
    assert b"AUTH" not in raw.cmd(b"EHLO c.test")
    assert raw.cmd(b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw==").startswith(b"538 5.7.11")
    raw.starttls()  # after EHLO, as RFC 3207 §4 has it
    assert b"AUTH PLAIN LOGIN" in raw.cmd(b"EHLO c.test")
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as client:
        client.starttls(context=client_tls())
        client.login("alice@example.test", PASSWORD)


def test_auth_login_and_cancel(connect: Connect, server: RunningServer) -> None:
    """AUTH LOGIN step by step, and "*" cancels (501)."""
    raw = connect(server, "submission")
    raw.cmd(b"EHLO c.test")
    raw.starttls()
    raw.cmd(b"EHLO c.test")
    assert raw.cmd(b"AUTH LOGIN").startswith(b"334 VXNlcm5hbWU6")
    assert raw.cmd(b"*").startswith(b"501")
    assert raw.cmd(b"AUTH LOGIN").startswith(b"334")
    assert raw.cmd(b"YWxpY2VAZXhhbXBsZS50ZXN0").startswith(b"334 UGFzc3dvcmQ6")
    assert raw.cmd(base64.b64encode(PASSWORD.encode())).startswith(b"235 2.7.0")
    assert raw.cmd(b"AUTH PLAIN").startswith(b"503")


def test_failed_tls_handshake_leaves_server_healthy(
    connect: Connect, server: RunningServer
) -> None:
    """Garbage instead of a TLS ClientHello after 220 ends that connection only."""
    raw = connect(server, "smtp")
    raw.cmd(b"EHLO c.test")
    assert raw.cmd(b"STARTTLS").startswith(b"220")
    raw.send(b"this is not TLS\r\n" * 20)
    assert raw.closed_by_server()
    again = connect(server, "smtp")
    assert again.cmd(b"EHLO c.test").startswith(b"250")
