"""Two Pillarbox nodes on one PostgreSQL database, as a cluster behind a load balancer
runs them: each a real `pillarbox serve` child process (tests/e2e/serve.py) with its own
data directory, ports and `[server] node_id`, both with `[server] store = "postgres"`
and the same `[store] dsn` (a fresh database per test, tests/pg.py).

Accounts, written to the database once before the nodes start (serve.add_accounts):
alice@example.test and bob@example.test (password `PASSWORD`). Each node's log goes to
`<tmp>/<node>/serve.log` (shown by `Cluster.logs` in a failing assertion's message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests import pg
from tests.e2e.serve import ServeProcess, add_accounts

LISTENERS = ("smtp", "imap", "http", "pop3")
USERS = ("alice@example.test", "bob@example.test")


def write_config(directory: Path, dsn: str, node_id: str) -> Path:
    """A node's configuration: SMTP (MX), IMAP, POP3 and the webmail on ephemeral loopback
    ports, every other listener off, no DNS (look-ups are refused at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    off = "\n".join(
        f'{name} = ""' for name in ("submission", "submissions", "imaps", "pop3s", "lmtp")
    )
    on = "\n".join(f'{name} = "127.0.0.1:0"' for name in LISTENERS)
    config = directory / "pillarbox.toml"
    config.write_text(
        "[server]\n"
        'hostname = "mail.example.test"\n'
        f'data_dir = "{directory / "data"}"\n'
        'log_level = "info"\n'
        'store = "postgres"\n'
        f'node_id = "{node_id}"\n'
        "[store]\n"
        f'dsn = "{dsn}"\n'
        "pool_min = 1\n"
        "pool_max = 8\n"
        "[listen]\n"
        f"{on}\n"
        f"{off}\n"
        "[dns]\n"
        'nameservers = ["127.0.0.1:9"]\n'
        "timeout = 1.0\n"
    )
    return config


class Node:
    """One running node; `port(listener)` as `RunningServer` has it (so the webmail's
    test client, tests/web/client.py, can talk to it)."""

    def __init__(self, name: str, config: Path) -> None:
        self.name = name
        self.config = config
        self.log = config.parent / "serve.log"
        self.process: ServeProcess | None = None

    def start(self) -> None:
        self.process = ServeProcess(self.config, LISTENERS, self.log)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def port(self, listener: str) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.ports[listener]


@dataclass
class Cluster:
    dsn: str
    nodes: list[Node]

    @property
    def node1(self) -> Node:
        return self.nodes[0]

    @property
    def node2(self) -> Node:
        return self.nodes[1]

    def logs(self) -> str:
        """Both nodes' logs so far (for an assertion message)."""
        out = []
        for node in self.nodes:
            text = node.log.read_text() if node.log.exists() else ""
            out.append(f"--- {node.name} ---\n{text[-4000:]}")
        return "\n".join(out)

    async def inbox_id(self, address: str) -> int:
        """The id of `address`'s INBOX, read from the shared database."""
        conn = await asyncpg.connect(self.dsn)
        try:
            mailbox_id = await conn.fetchval(
                "SELECT m.id FROM mailboxes m JOIN accounts a ON a.id = m.account_id"
                " WHERE a.address = $1 AND m.name = 'INBOX'",
                address,
            )
        finally:
            await conn.close()
        assert isinstance(mailbox_id, int)
        return mailbox_id


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Two started nodes, `node-1` and `node-2`, with the accounts of the module docstring."""
    dsn = pg.database(str(tmp_path / "db"))
    nodes = [Node(name, write_config(tmp_path / name, dsn, name)) for name in ("node-1", "node-2")]
    first = nodes[0].config
    add_accounts(first, "example.test", USERS)
    try:
        for node in nodes:
            node.start()
        yield Cluster(dsn, nodes)
    finally:
        for node in nodes:
            node.stop()
