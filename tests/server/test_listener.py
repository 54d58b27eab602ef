"""The shared listener: per-IP limits, handler faults contained, STARTTLS, idle timeout."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest

from pillarbox.server.listener import ListenerLimits, Stream, start_listener
from pillarbox.server.tls import ensure_self_signed, server_context


async def echo_handler(stream: Stream) -> None:
    """Echo lines; 'STARTTLS' upgrades, 'CRASH' raises, 'TLS?' reports the TLS state."""
    await stream.write(b"hello\r\n")
    buffered = b""
    while True:
        data = await stream.read(timeout=5)
        if not data:
            return
        buffered += data
        while b"\n" in buffered:
            line, _, buffered = buffered.partition(b"\n")
            line = line.rstrip(b"\r")
            if line == b"CRASH":
                raise RuntimeError("secret internal detail")
            if line == b"STARTTLS":
                await stream.write(b"go ahead\r\n")
                buffered = b""  # RFC 3207 §4.2: what came before the handshake is dropped
                await stream.start_tls()
                break
            if line == b"TLS?":
                await stream.write(b"tls=%d\r\n" % stream.tls_active)
                continue
            await stream.write(b"echo " + line + b"\r\n")


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = ensure_self_signed(tmp_path / "tls", "mail.example.test")
    client = ssl.create_default_context(cafile=str(cert))
    client.check_hostname = False
    return server_context(cert, key), client


async def test_per_ip_limit_refuses_with_busy_reply() -> None:
    """Over max_per_ip the peer gets the busy reply and is closed; others keep working."""
    listener = await start_listener(
        "test",
        "127.0.0.1:0",
        echo_handler,
        limits=ListenerLimits(max_connections=10, max_per_ip=2),
        busy_reply=b"busy\r\n",
    )
    try:
        conns = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(2)]
        for reader, _ in conns:
            assert await reader.readline() == b"hello\r\n"
        reader3, writer3 = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await reader3.readline() == b"busy\r\n"
        assert await reader3.read() == b""
        writer3.close()
        reader, writer = conns[0]
        writer.write(b"ping\r\n")
        assert await reader.readline() == b"echo ping\r\n"
        for _, w in conns:
            w.close()
    finally:
        await listener.close()


async def test_handler_crash_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in one connection closes it, is logged, and never reaches the peer."""
    listener = await start_listener("test", "127.0.0.1:0", echo_handler)
    try:
        r1, w1 = await asyncio.open_connection("127.0.0.1", listener.port)
        r2, w2 = await asyncio.open_connection("127.0.0.1", listener.port)
        await r1.readline()
        await r2.readline()
        w1.write(b"CRASH\r\n")
        rest = await r1.read()
        assert b"secret" not in rest
        w2.write(b"still here\r\n")
        assert await r2.readline() == b"echo still here\r\n"
        assert "handler failed" in caplog.text
        w1.close()
        w2.close()
    finally:
        await listener.close()


async def test_starttls_and_implicit_tls(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """STARTTLS upgrades the same connection; an implicit-TLS listener handshakes first."""
    server_ctx, client_ctx = tls
    plain = await start_listener("plain", "127.0.0.1:0", echo_handler, ssl_context=server_ctx)
    implicit = await start_listener(
        "tls", "127.0.0.1:0", echo_handler, ssl_context=server_ctx, implicit_tls=True
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", plain.port)
        assert await reader.readline() == b"hello\r\n"
        writer.write(b"STARTTLS\r\nINJECTED\r\n")
        assert await reader.readline() == b"go ahead\r\n"
        await writer.start_tls(client_ctx)
        writer.write(b"TLS?\r\n")
        assert await reader.readline() == b"tls=1\r\n"
        writer.write(b"after\r\n")
        assert await reader.readline() == b"echo after\r\n"
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", implicit.port, ssl=client_ctx)
        assert await reader.readline() == b"hello\r\n"
        writer.write(b"TLS?\r\n")
        assert await reader.readline() == b"tls=1\r\n"
        writer.close()
    finally:
        await plain.close()
        await implicit.close()


def test_self_signed_is_reused(tmp_path: Path) -> None:
    """The generated certificate is made once and reused on later starts."""
    cert, key = ensure_self_signed(tmp_path, "mail.example.test")
    first = cert.read_bytes()
    cert2, _ = ensure_self_signed(tmp_path, "mail.example.test")
    assert cert2.read_bytes() == first
    assert oct(key.stat().st_mode & 0o777) == "0o600"


async def test_connection_rate_per_ip() -> None:
    """Past rate_per_ip new connections a minute, an IP gets the busy reply at once."""
    listener = await start_listener(
        "test",
        "127.0.0.1:0",
        echo_handler,
        limits=ListenerLimits(max_connections=100, max_per_ip=100, rate_per_ip=5),
        busy_reply=b"slow down\r\n",
    )
    try:
        greetings = []
        for _ in range(7):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            greetings.append(await reader.readline())
            writer.close()
            await writer.wait_closed()
        assert greetings == [b"hello\r\n"] * 5 + [b"slow down\r\n"] * 2
    finally:
        await listener.close()


async def test_a_flood_of_refusals_is_logged_once_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 16 item 5: 40 refused connections from one address make one WARNING line
    at the first refusal and one with the count of the other 39 when the interval ends,
    not 40 lines."""
    listener = await start_listener(
        "test",
        "127.0.0.1:0",
        echo_handler,
        limits=ListenerLimits(max_connections=100, max_per_ip=100, rate_per_ip=1),
        busy_reply=b"slow down\r\n",
        refusal_interval=0.5,
    )
    caplog.set_level(logging.WARNING, logger="pillarbox.listener")
    try:
        for _ in range(41):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            await reader.readline()
            writer.close()
            await writer.wait_closed()

        async def summary() -> list[str]:
            while True:
                lines = [r.getMessage() for r in caplog.records]
                if any("more connections" in line for line in lines):
                    return lines
                await asyncio.sleep(0.05)

        lines = await asyncio.wait_for(summary(), 10)
        refusals = [line for line in lines if "refused" in line]
        assert len(refusals) == 2, refusals
        assert "too many connections" in refusals[0]
        assert "refused 39 more connections from 127.0.0.1" in refusals[1]
    finally:
        await listener.close()
