"""Two nodes on one PostgreSQL database share the outbound queue; one is SIGKILLed in
the middle of a queue run and the other sends what it left (issue 17's fault test).

Both nodes are real `python -m pillarbox serve` child processes with their own
`[server] node_id`, delivering to one slow SMTP peer on 127.0.0.1 (tests/queue/peer.py)
found through an MX record on a loopback DNS server. Each message has its own recipient
and Message-ID, and the peer counts what it acknowledged with 250: the receiving side's
view of "exactly once".

Node A is killed while its connections wait for the peer's reply to their final dots.
Its claims stay in the database until `[delivery] claim_lease` passes; then node B
claims those entries (`FOR UPDATE SKIP LOCKED`) and sends them. Nothing acknowledged is
sent again, nothing is lost, and the queue ends empty.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests import pg
from tests.dnsserver import DnsServer
from tests.e2e.serve import ServeProcess, add_accounts
from tests.e2e.test_queue_crash import (
    SENDER,
    message_number,
    queued_recipients,
    stop_all,
    submit,
    until,
)
from tests.queue.peer import Peer

COUNT = 40
LEASE = 15.0  # seconds; longer than one attempt at the 2 s timeouts below


def write_config(tmp: Path, node: str, dsn: str, dns: DnsServer, peer_port: int) -> Path:
    off = "\n".join(
        f'{name} = ""'
        for name in ("smtp", "submissions", "imap", "imaps", "pop3", "pop3s", "http", "lmtp")
    )
    config = tmp / f"{node}.toml"
    config.write_text(
        "[server]\n"
        'hostname = "mail.crash.test"\n'
        f'data_dir = "{tmp / node}"\n'
        'store = "postgres"\n'
        f'node_id = "{node}"\n'
        "[store]\n"
        f'dsn = "{dsn}"\n'
        "[listen]\n"
        'submission = "127.0.0.1:0"\n'
        f"{off}\n"
        "[dns]\n"
        f'nameservers = ["{dns.nameserver}"]\n'
        "timeout = 2.0\n"
        "[delivery]\n"
        f"port = {peer_port}\n"
        "allow_private_networks = true\n"
        "max_connections = 3\n"
        "max_connections_per_domain = 3\n"
        "connect_timeout = 2.0\n"
        "command_timeout = 2.0\n"
        "retry_initial = 1.0\n"
        "retry_max = 2.0\n"
        f"claim_lease = {LEASE}\n"
        "dkim_sign = false\n"
    )
    return config


async def serve(config: Path) -> ServeProcess:
    log = config.with_suffix(".log")
    return await asyncio.to_thread(ServeProcess, config, ("submission",), log)


@pytest.mark.timeout(180)
async def test_a_killed_node_leaves_its_queue_to_the_other(
    tmp_path: Path, dns_server: DnsServer
) -> None:
    dsn = pg.database(str(tmp_path))
    greet = asyncio.Event()
    peer = await Peer(data_delay=0.02, greet=greet).start()
    dns_server.add("remote.test", "MX", "10 mx.remote.test.")
    dns_server.add("mx.remote.test", "A", "127.0.0.1")
    config_a = write_config(tmp_path, "node-a", dsn, dns_server, peer.port)
    config_b = write_config(tmp_path, "node-b", dsn, dns_server, peer.port)
    await asyncio.to_thread(add_accounts, config_a, "crash.test", [SENDER])
    node_a = await serve(config_a)
    node_b: ServeProcess | None = None
    try:
        # Everything is queued through node A while the peer does not greet yet, so
        # node A claims the first entries; then node B starts and claims others.
        await asyncio.to_thread(submit, node_a.port, range(COUNT))
        node_b = await serve(config_b)
        greet.set()
        await until(peer, lambda: len(peer.received) >= COUNT // 4, "a quarter delivered")
        peer.stall = True
        await until(
            peer,
            lambda: peer.open_connections > 0 and len(peer.unanswered) == peer.open_connections,
            "every connection waiting for its final reply",
        )
        in_flight = {message_number(rx) for rx in peer.unanswered.values()}
        # The peer has decided to leave each of those dots unanswered (past its reply
        # delay): none of them can be acknowledged once the stall ends.
        await until(
            peer,
            lambda: in_flight <= {message_number(rx) for rx in peer.stalled},
            "the held final dots stalled for good",
        )
        acked_before = Counter(message_number(rx) for rx in peer.received)
        await asyncio.to_thread(node_a.kill)
        peer.stall = False  # node B's held dots are answered, node A's connections are gone
        expected = set(range(COUNT))
        await until(
            peer,
            lambda: expected <= {message_number(rx) for rx in peer.received},
            "every message delivered by node B, those node A held at the kill too",
            timeout=90,
        )
    finally:
        await stop_all(node_a, node_b)
        await peer.stop()

    acked = Counter(message_number(rx) for rx in peer.received)
    twice = sorted(n for n, times in acked.items() if times > 1)
    assert not twice, f"acknowledged more than once: {twice}"
    assert in_flight, "nothing was in flight at the kill"
    assert not in_flight & set(acked_before), "an acknowledged message was being sent again"
    assert sorted(acked) == list(range(COUNT)), "a message was lost"
    assert not queued_recipients(config_b)
