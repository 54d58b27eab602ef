"""SMTP robustness through the real server: clients that vanish in the middle of DATA or
BDAT, never read their replies, trickle one byte at a time, pipeline 1,000 commands,
arrive 200 at once, send a 30 MB message to five mailboxes, or put NUL and 8-bit bytes in
commands. Each case ends with the server healthy and nothing half-stored."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningServer, password_hash, trickle_until_dropped
from tests.e2e.test_smtp_helpers import RawSmtp, mailbox
from tests.e2e.test_smtp_security import wait_idle

MSG = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: t\r\n\r\nhello\r\n"


def tmp_files(server: RunningServer) -> list[Path]:
    """Message files on disk (any directory): a dropped message must leave none."""
    return [p for p in (Path(server.config.server.data_dir) / "blobs").rglob("*") if p.is_file()]


def open_transaction(raw: RawSmtp) -> None:
    for line in (b"EHLO c.test", b"MAIL FROM:<a@remote.test>", b"RCPT TO:<bob@example.test>"):
        assert raw.cmd(line).startswith(b"250")


@pytest.mark.parametrize("mode", ["data", "bdat"])
def test_disconnect_mid_message_stores_nothing(server: RunningServer, mode: str) -> None:
    """A client that closes the connection halfway through DATA or a BDAT chunk leaves
    no message and no temporary file behind, and the next client is served."""
    raw = RawSmtp(server.port("smtp"))
    open_transaction(raw)
    if mode == "data":
        assert raw.cmd(b"DATA").startswith(b"354")
        raw.send(MSG + b"x" * 300_000)
    else:
        raw.send(b"BDAT 1000000 LAST\r\n" + MSG + b"x" * 300_000)
    raw.close()
    wait_idle(server, "smtp")
    assert mailbox(server, "bob@example.test") == []
    assert tmp_files(server) == []
    raw = RawSmtp(server.port("smtp"))
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    assert raw.cmd(MSG + b".").startswith(b"250")
    raw.close()
    raw.close()
    assert len(mailbox(server, "bob@example.test")) == 1


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_slow_loris_is_bounded_by_the_idle_timeout(
    server_factory: Callable[..., RunningServer], listener: str
) -> None:
    """RFC 5321 §4.5.3.2: a client that sends a byte every 0.2 s, never finishing a
    command, is still closed with 421 4.4.2 once the (1 s) idle timeout has passed:
    the timeout bounds a command, not a single read."""
    server = server_factory(smtp={"idle_timeout": 1.0})
    raw = RawSmtp(server.port(listener))
    assert trickle_until_dropped(raw.send, b"N") < 5
    assert raw.reply().startswith(b"421 4.4.2")
    raw.close()


def test_slow_loris_in_data_is_bounded(server_factory: Callable[..., RunningServer]) -> None:
    """The same in DATA: message content trickling in below 32 KiB per idle period does
    not re-arm the timeout, so the session ends and nothing is stored."""
    server = server_factory(smtp={"idle_timeout": 1.0})
    raw = RawSmtp(server.port("smtp"))
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    assert trickle_until_dropped(raw.send, b"x") < 5
    assert raw.reply().startswith(b"421 4.4.2")
    raw.close()
    wait_idle(server, "smtp")
    assert mailbox(server, "bob@example.test") == []
    assert tmp_files(server) == []


def test_client_that_never_reads_is_dropped(server_factory: Callable[..., RunningServer]) -> None:
    """A client that pipelines commands forever and never reads a reply fills our send
    buffer; the blocked write is bounded by the idle timeout too, so the session ends
    and its connection is closed instead of being held forever."""
    server = server_factory(smtp={"idle_timeout": 1.0})
    sock = socket.create_connection(("127.0.0.1", server.port("smtp")))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(1.0)
    line = b"EHLO " + b"x" * 200 + b"\r\n"
    with pytest.raises(OSError):  # our send blocks once the server stops reading
        for _ in range(200_000):
            sock.sendall(line)
    wait_idle(server, "smtp", timeout=15)
    sock.close()
    raw = RawSmtp(server.port("smtp"))
    assert raw.cmd(b"NOOP").startswith(b"250")
    raw.close()


def test_thousand_pipelined_commands_answered_in_order(server: RunningServer) -> None:
    """RFC 2920: 1,000 commands in one write get 1,000 replies, in order: a whole mail
    transaction repeated 200 times (MAIL, RCPT, RCPT, RSET, NOOP). (Refused commands
    would count towards smtp.max_bad_commands and end the session, by design.)"""
    raw = RawSmtp(server.port("smtp"))
    assert raw.cmd(b"EHLO c.test").startswith(b"250")
    group = (
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
        b"RCPT TO:<alice@example.test>\r\nRSET\r\nNOOP\r\n"
    )
    raw.send(group * 200)
    codes = [raw.reply()[:3] for _ in range(1000)]
    assert codes == [b"250"] * 1000
    assert raw.cmd(b"QUIT").startswith(b"221")
    raw.close()


def test_two_hundred_concurrent_sessions(server_factory: Callable[..., RunningServer]) -> None:
    """200 clients connected at once, each delivering one message in one pipelined
    burst, all get 250 and all 200 messages are stored."""
    server = server_factory(limits={"max_connections_per_ip": 500, "connection_rate_per_ip": 0})
    port = server.port("smtp")

    async def one(n: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(
            b"EHLO c%d.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n" % n
        )
        replies = [await reader.readline() for _ in range(13)]  # 10-line EHLO + 3
        assert replies[-1].startswith(b"354"), replies
        writer.write(MSG.replace(b"hello", b"msg %d" % n) + b".\r\nQUIT\r\n")
        done = await reader.readline()
        await reader.readline()
        writer.close()
        await writer.wait_closed()
        return done

    async def all_of_them() -> list[bytes]:
        return await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(200))), 30)

    results = asyncio.run(all_of_them())
    assert all(r.startswith(b"250 2.0.0") for r in results), results
    assert len(mailbox(server, "bob@example.test")) == 200


def test_thirty_megabytes_to_five_recipients_byte_exact(server: RunningServer) -> None:
    """A 30 MB message for five local mailboxes: every copy is the sent message exactly
    (after its own trace headers), dot-stuffed lines restored."""
    extra = ("dave@example.test", "erin@example.test")

    async def add() -> None:
        for address in extra:
            await server.store.add_account(address, password_hash())

    server.call(add)
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + (line + b".dot\r\n") * (30 * 1024 * 1024 // 80)
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    rcpts = ["alice@example.test", "bob@example.test", "carol@other.test", *extra]
    raw = RawSmtp(server.port("smtp"))
    assert raw.cmd(b"EHLO c.test").startswith(b"250")
    assert raw.cmd(b"MAIL FROM:<a@remote.test> SIZE=%d" % len(body)).startswith(b"250")
    for rcpt in rcpts:
        assert raw.cmd(b"RCPT TO:<%s>" % rcpt.encode()).startswith(b"250")
    assert raw.cmd(b"DATA").startswith(b"354")
    raw.send(stuffed)
    assert raw.cmd(b".").startswith(b"250 2.0.0")
    raw.close()
    for rcpt in rcpts:
        (stored,) = mailbox(server, rcpt)
        assert stored.endswith(b"\r\n" + body) and f"Delivered-To: {rcpt}".encode() in stored


def test_nul_and_8bit_bytes_in_commands(server: RunningServer) -> None:
    """NUL, invalid UTF-8 and bare 8-bit bytes in a command are 500 5.5.2 (nothing is
    echoed back); the session stays usable and a transaction still works after."""
    raw = RawSmtp(server.port("smtp"))
    assert raw.cmd(b"EHLO c.test").startswith(b"250")
    for bad in (b"NO\x00OP", b"MAIL FROM:<a\x00@remote.test>", b"\xff\xfe\xfd", b"RCPT \x80"):
        reply = raw.cmd(bad)
        assert reply.startswith(b"500 5.5.2"), reply
    open_transaction(raw)
    assert raw.cmd(b"DATA").startswith(b"354")
    assert raw.cmd(MSG + b".").startswith(b"250")
    raw.close()
