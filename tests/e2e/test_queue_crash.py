"""The outbound queue survives a SIGKILL in the middle of delivery (issue 12).

A real `python -m pillarbox serve` child process sends 200 submitted messages to a slow
SMTP peer on 127.0.0.1 (tests/queue/peer.py: every final dot answered after 20 ms), found
through an MX record on a loopback DNS server. Each message has its own recipient and
Message-ID, and the peer counts what it acknowledged with 250, by Message-ID: that is the
receiving side's view, the one that matters for "exactly once".

The restart re-sends nothing the peer acknowledged and loses nothing; the messages in
flight at the kill are sent again at once (the runner releases the claims a dead run
left, `store.release_claims`), so all 200 arrive exactly once and the queue ends empty.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from tests.dnsserver import DnsServer
from tests.e2e.conftest import PASSWORD
from tests.e2e.serve import ServeProcess, add_accounts, cli
from tests.queue.peer import Peer, Received

COUNT = 200
SENDER = "sender@crash.test"
KILL_AFTER = 60  # acknowledged messages before the peer stalls and the server is killed
SUBMITTERS = 4  # parallel submission sessions
MESSAGE_ID = re.compile(rb"^Message-ID: <(\d+)\.crash@crash\.test>", re.MULTILINE | re.IGNORECASE)


def recipient(n: int) -> str:
    return f"r{n:03d}@remote.test"


def message_number(rx: Received) -> int:
    """The message's number, from its Message-ID (checked against its one recipient)."""
    match = MESSAGE_ID.search(rx.data)
    assert match is not None, rx.data[:500]
    n = int(match.group(1))
    assert len(rx.rcpts) == 1 and f"<{recipient(n)}>" in rx.rcpts[0], (n, rx.rcpts)
    return n


def write_config(tmp: Path, dns: DnsServer, peer_port: int) -> Path:
    config = tmp / "pillarbox.toml"
    off = "\n".join(
        f'{name} = ""'
        for name in ("smtp", "submissions", "imap", "imaps", "pop3", "pop3s", "http", "lmtp")
    )
    config.write_text(
        "[server]\n"
        'hostname = "mail.crash.test"\n'
        f'data_dir = "{tmp / "data"}"\n'
        'log_level = "info"\n'
        "[listen]\n"
        'submission = "127.0.0.1:0"\n'
        f"{off}\n"
        "[dns]\n"
        f'nameservers = ["{dns.nameserver}"]\n'
        "timeout = 2.0\n"
        "[delivery]\n"
        f"port = {peer_port}\n"
        "allow_private_networks = true\n"
        "max_connections = 4\n"
        "max_connections_per_domain = 4\n"
        # The greeting is held until every message is queued: room for a loaded machine.
        "connect_timeout = 30.0\n"
        "command_timeout = 30.0\n"
        "retry_initial = 1.0\n"
        "retry_max = 2.0\n"
        "dkim_sign = false\n"
    )
    return config


async def prepare(tmp: Path, dns: DnsServer, peer: Peer) -> Path:
    """The config, the MX records, the domain and the sender's account; the config's path."""
    config = write_config(tmp, dns, peer.port)
    dns.add("remote.test", "MX", "10 mx.remote.test.")
    dns.add("mx.remote.test", "A", "127.0.0.1")
    await asyncio.to_thread(add_accounts, config, "crash.test", [SENDER])
    return config


async def until(peer: Peer, predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """`peer.wait_until`, failing with an AssertionError that says what did not happen."""
    try:
        await peer.wait_until(predicate, timeout)
    except TimeoutError:
        raise AssertionError(f"not within {timeout:g}s: {what}") from None


async def serve(config: Path) -> ServeProcess:
    """Start `pillarbox serve` (its log appended to serve.log beside the config)."""
    log = config.parent / "serve.log"
    return await asyncio.to_thread(ServeProcess, config, ("submission",), log)


async def stop_all(*servers: ServeProcess | None) -> None:
    for server in servers:
        if server is not None and server.proc.poll() is None:
            await asyncio.to_thread(server.stop)


def submit(port: int, numbers: range) -> None:
    """Submit messages `numbers` over one authenticated submission session."""
    with smtplib.SMTP("127.0.0.1", port, "client.crash.test", timeout=30) as client:
        client.login(SENDER, PASSWORD)  # plain AUTH: allowed on loopback
        for n in numbers:
            msg = EmailMessage()
            msg["From"] = SENDER
            msg["To"] = recipient(n)
            msg["Subject"] = f"crash test {n}"
            msg["Message-ID"] = f"<{n}.crash@crash.test>"
            msg.set_content(f"message {n}\n" + "payload line\n" * 20)
            client.send_message(msg)


def queued_recipients(config: Path) -> set[str]:
    """Recipients still queued, as `pillarbox queue list` shows them (the server stopped)."""
    lines = cli(config, "queue", "list").splitlines()
    return {r for line in lines[1:] for r in line.split()[2].split(",")}


class RecordedFirst:
    """A peer hook (`Peer.after_ack`): when the client moves on after a 250, the recipient
    of the message acknowledged must no longer be queued in Pillarbox's database (its
    outcome recorded, or the entry finished and removed). Reads `pillarbox.db` read-only,
    as a second process may (WAL)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.checked: list[int] = []
        self.wrong: list[tuple[int, list[tuple[str, ...]]]] = []

    def __call__(self, rx: Received) -> None:
        n = message_number(rx)
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            states = conn.execute(
                "SELECT state FROM queue_recipients WHERE address = ?", (recipient(n),)
            ).fetchall()
        finally:
            conn.close()
        if states not in ([], [("delivered",)]):
            self.wrong.append((n, states))
        self.checked.append(n)


async def test_sigkill_while_delivering_sends_each_message_once(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    """200 queued messages to a slow peer; once 60 are acknowledged the peer stops
    answering final dots, and when every connection waits for that answer the server is
    SIGKILLed, mid-delivery. Pins down, at the receiving side:
    - the runner records a 250 before it sends anything more on that connection (checked
      live against the database at the peer's next command);
    - after a restart on the same data, every message was acknowledged exactly once or
      is still queued: none lost, none duplicated; the queue ends empty;
    - still queued can only be a message in flight at the kill (at least one was).
    """
    started = time.monotonic()
    greet = asyncio.Event()
    peer = await Peer(data_delay=0.02, greet=greet).start()
    config = await prepare(tmp_path, dns_server, peer)
    recorded_first = RecordedFirst(tmp_path / "data" / "pillarbox.db")
    peer.after_ack = recorded_first
    server = await serve(config)
    restarted: ServeProcess | None = None
    try:
        per = COUNT // SUBMITTERS
        await asyncio.gather(
            *(
                asyncio.to_thread(submit, server.port, range(i * per, (i + 1) * per))
                for i in range(SUBMITTERS)
            )
        )
        submitted = time.monotonic()
        greet.set()  # every message is queued: now the peer talks

        await until(peer, lambda: len(peer.received) >= KILL_AFTER, f"{KILL_AFTER} delivered")
        peer.stall = True
        # Every connection the server has open to the peer waits for its final reply:
        # what the peer acknowledged before is recorded (the runner moved on after it).
        await until(
            peer,
            lambda: peer.open_connections > 0 and len(peer.unanswered) == peer.open_connections,
            "every connection waiting for its final reply",
        )
        in_flight = {message_number(rx) for rx in peer.unanswered.values()}
        acked_before = Counter(message_number(rx) for rx in peer.received)
        checked_before = len(recorded_first.checked)
        await asyncio.to_thread(server.kill)
        killed = time.monotonic()
        await until(peer, lambda: peer.open_connections == 0, "connections closed by the kill")
        assert peer.stall and len(peer.received) == sum(acked_before.values())
        peer.stall = False

        restarted = await serve(config)
        expected = set(range(COUNT))
        await until(
            peer,
            lambda: expected <= {message_number(rx) for rx in peer.received},
            "every message delivered after the restart, those in flight at the kill too",
        )
        delivered = time.monotonic()
    finally:
        await stop_all(server, restarted)
        await peer.stop()

    acked = Counter(message_number(rx) for rx in peer.received)
    twice = sorted(n for n, times in acked.items() if times > 1)
    assert not twice, f"acknowledged more than once: {twice}"
    assert in_flight, "nothing was in flight at the kill"
    assert not in_flight & set(acked_before), "an acknowledged message was being sent again"
    assert sorted(acked) == list(range(COUNT)), "a message was lost"
    still_queued = queued_recipients(config)
    assert not still_queued, still_queued
    assert not recorded_first.wrong, f"acknowledged but still queued: {recorded_first.wrong}"
    # Every 250 before the kill was followed by a command on its connection, and checked.
    assert checked_before == sum(acked_before.values())
    print(
        f"submitted {COUNT} in {submitted - started:.1f}s; acknowledged {len(acked_before)} "
        f"before the kill, {len(in_flight)} in flight at it; after the restart "
        f"{len(acked)} acknowledged in {delivered - killed:.1f}s, {len(still_queued)} "
        f"still queued; {len(recorded_first.checked)} 250s checked against the database"
    )


async def test_messages_in_flight_at_a_sigkill_are_sent_after_the_restart(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    """Three messages, each held at the peer's final dot when the server is SIGKILLed;
    the restarted server sends all three within a few seconds (none was acknowledged,
    so sending them again is right, not a duplicate)."""
    greet = asyncio.Event()
    peer = await Peer(greet=greet, stall=True).start()
    config = await prepare(tmp_path, dns_server, peer)
    server = await serve(config)
    restarted: ServeProcess | None = None
    try:
        await asyncio.to_thread(submit, server.port, range(3))
        greet.set()
        await until(peer, lambda: len(peer.unanswered) == 3, "three final dots held")
        await asyncio.to_thread(server.kill)
        await until(peer, lambda: peer.open_connections == 0, "connections closed by the kill")
        assert not peer.received
        peer.stall = False
        restarted = await serve(config)
        await peer.wait_until(lambda: len(peer.received) == 3, timeout=5)  # TimeoutError
    finally:
        await stop_all(server, restarted)
        await peer.stop()
    assert sorted(message_number(rx) for rx in peer.received) == [0, 1, 2]
    assert not queued_recipients(config)
