"""SMTP durability and streaming end to end.

- A SIGKILL of a real `python -m pillarbox serve` process in the middle of 400
  concurrent deliveries loses none of the messages that got their 250.
- A 50 MB message streams to disk: the server's memory does not grow with it while it
  arrives, and other sessions' commands are answered promptly meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pillarbox.store.sqlite import SqliteStore
from tests.e2e.conftest import RunningServer
from tests.e2e.serve import ServeProcess, add_accounts
from tests.e2e.test_smtp_helpers import RawSmtp, mailbox

USERS = [f"u{i}@example.test" for i in range(4)]


CONVERSATION_TIMEOUT = 30.0  # seconds: a client gives up, as real MTAs do (RFC 5321 §4.5.3.2)


async def deliver_one(port: int, n: int) -> int | None:
    """Send message n over the MX; return n if the server answered 250 to the data.
    A conversation that gets no answer within CONVERSATION_TIMEOUT was not acknowledged
    (a connection the kernel had queued for a worker killed at that moment can be left
    with no reply; a real MTA times out and retries later)."""
    try:
        async with asyncio.timeout(CONVERSATION_TIMEOUT):
            return await _conversation(port, n)
    except TimeoutError:
        return None


async def _conversation(port: int, n: int) -> int | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        await reader.readline()
        rcpt = USERS[n % len(USERS)]
        writer.write(
            b"EHLO load.test\r\nMAIL FROM:<s@remote.test>\r\n"
            + f"RCPT TO:<{rcpt}>\r\nDATA\r\n".encode()
        )
        for _ in range(4):
            line = await reader.readline()
            while line[3:4] == b"-":
                line = await reader.readline()
        if not line.startswith(b"354"):
            return None
        body = f"Subject: token-{n:05d}\r\nMessage-ID: <{n}@load.test>\r\n\r\n".encode()
        writer.write(body + b"payload line\r\n" * 50 + b".\r\n")
        reply = await reader.readline()
        return n if reply.startswith(b"250 ") else None
    except OSError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def load(port: int, count: int, kill_after: int, kill: Callable[[], None]) -> set[int]:
    acked: set[int] = set()
    killed = False

    async def one(n: int) -> None:
        nonlocal killed
        result = await deliver_one(port, n)
        if result is not None:
            acked.add(result)
            if len(acked) >= kill_after and not killed:
                killed = True
                kill()

    await asyncio.gather(*(one(n) for n in range(count)))
    return acked


async def stored_tokens(data_dir: Path) -> set[int]:
    store = SqliteStore(data_dir)
    await store.open()
    tokens: set[int] = set()
    try:
        for user in USERS:
            account = await store.get_account(user)
            assert account is not None
            box = await store.get_mailbox(account.id, "INBOX")
            assert box is not None
            for uid in await store.uids(box.id):
                data = await store.read_message(box.id, uid)
                match = re.search(rb"Subject: token-(\d{5})", data)
                assert match is not None
                assert data.endswith(b"payload line\r\n" * 50)
                tokens.add(int(match.group(1)))
    finally:
        await store.close()
    return tokens


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_loses_no_acknowledged_message(tmp_path: Path, workers: int) -> None:
    """400 concurrent deliveries; SIGKILL (of every process of the server) once 100
    have been acknowledged; after a restart every acknowledged message is in the store,
    complete. With one process and with two workers (`[server] workers`)."""
    config = tmp_path / "pillarbox.toml"
    data_dir = tmp_path / "data"
    empty = "\n".join(
        f'{name} = ""'
        for name in ("submission", "submissions", "imap", "imaps", "pop3", "pop3s", "http")
    )
    config.write_text(
        f'[server]\nhostname = "mail.example.test"\ndata_dir = "{data_dir}"\nlog_level = "error"\n'
        f"workers = {workers}\n"
        f'[listen]\nsmtp = "127.0.0.1:0"\n{empty}\n'
        "[limits]\nmax_connections = 2000\nmax_connections_per_ip = 1000\n"
    )
    add_accounts(config, "example.test", USERS)
    server = ServeProcess(config)
    try:
        acked = asyncio.run(load(server.port, 400, 100, server.kill))
    finally:
        if server.proc.poll() is None:
            server.kill()
    assert len(acked) >= 100
    restarted = ServeProcess(config)  # the server comes back on the same data
    restarted.stop()
    stored = asyncio.run(stored_tokens(data_dir))
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:10]}"
    print(f"acked {len(acked)}, stored {len(stored)} of 400 attempted")


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


@pytest.mark.slow
def test_large_message_streams(server: RunningServer, traced: None) -> None:
    """50 MB over DATA: while it arrives the process's traced memory stays far below the
    message size, and another session's NOOPs keep being answered quickly."""
    size = 50 * 1024 * 1024
    line = b"x" * 76 + b"\r\n"
    piece = line * (1024 * 1024 // len(line))
    big = RawSmtp(server.port("smtp"))
    for cmd in (b"EHLO big.test", b"MAIL FROM:<s@remote.test>", b"RCPT TO:<bob@example.test>"):
        assert big.cmd(cmd).startswith(b"250")
    assert big.cmd(b"DATA").startswith(b"354")
    other = RawSmtp(server.port("smtp"))
    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        while not done.is_set():
            start = time.monotonic()
            assert other.cmd(b"NOOP").startswith(b"250")
            latencies.append(time.monotonic() - start)

    pinger = threading.Thread(target=ping)
    pinger.start()
    tracemalloc.reset_peak()
    big.send(b"Subject: big\r\n\r\n")
    sent = 0
    while sent < size:
        big.send(piece)
        sent += len(piece)
    _, streaming_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.monotonic()
    big.send(b".\r\n")
    reply = big.reply()
    finish_seconds = time.monotonic() - started
    done.set()
    pinger.join(timeout=60)
    big.close()
    other.close()
    assert reply.startswith(b"250 ")
    (stored,) = mailbox(server, "bob@example.test")
    assert len(stored) > size
    stored = b""
    worst = max(latencies)
    print(
        f"50 MB: traced peak while streaming {streaming_peak / 2**20:.1f} MiB, "
        f"end-of-data to 250 {finish_seconds:.2f}s, NOOPs {len(latencies)}, "
        f"worst NOOP {worst * 1000:.0f} ms"
    )
    assert streaming_peak < 16 * 2**20
    assert worst < 1.0
    assert os.path.exists(server.config.data_path)
