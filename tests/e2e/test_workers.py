"""`pillarbox serve` with `[server] workers = 2`, as a real master and two workers.

Which worker serves a connection is read where an operator would read it: the log,
whose lines name the worker (`w1`, `w2`) and, at debug level, each connection's id and
client port. With that the tests check that connections land on both workers; that an
IDLE client on one worker sees a delivery and a STORE handled by the other within a
second, and a NOTIFY client the other's APPEND (on SQLite through the master's hub,
on PostgreSQL through each worker's relay); that a worker killed with SIGKILL while
messages arrive loses none that got their 250, is restarted and serves again; that
SIGTERM to the master stops everything cleanly; and that workers do not outlive a
master killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import poplib
import re
import signal
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.e2e.conftest import PASSWORD
from tests.e2e.modseq_client import append, ok, read_until
from tests.e2e.serve import ServeProcess, add_accounts, cli
from tests.e2e.test_imap_raw import RawImap
from tests.e2e.test_smtp_durability import USERS, load, stored_tokens

STARTED = re.compile(r"INFO master \S+: w(\d+) started \(pid (\d+)\)")
CONNECTED = re.compile(r"DEBUG w(\d+) pillarbox\.listener: (\S+) connected from [\d.]+:(\d+)")
FAST = 1.0  # seconds: what a change in one worker may take to reach the other's client


def write_config(
    tmp: Path, *, backend: str = "sqlite", listen: tuple[str, ...], per_ip: int = 1000
) -> Path:
    config = tmp / "pillarbox.toml"
    names = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "http")
    lines = [
        "[server]",
        'hostname = "mail.example.test"',
        f'data_dir = "{tmp / "data"}"',
        'log_level = "debug"',
        "workers = 2",
    ]
    if backend == "postgres":
        lines += ['store = "postgres"', f'node_id = "node-{tmp.name}"']
    lines += ["[listen]"]
    lines += [f'{n} = "{"127.0.0.1:0" if n in listen else ""}"' for n in names]
    lines += ["[limits]", f"max_connections_per_ip = {per_ip}", "connection_rate_per_ip = 0"]
    if backend == "postgres":
        lines += ["[store]", f'dsn = "{pg.database(str(tmp))}"', "pool_min = 1", "pool_max = 5"]
    config.write_text("\n".join(lines) + "\n")
    return config


class Cluster:
    """The running server, its log, and the workers' process ids as the master logged them."""

    def __init__(self, config: Path, log: Path, listeners: tuple[str, ...]) -> None:
        self.config, self.log = config, log
        self.server = ServeProcess(config, listeners, log=log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[int, int]:
        """Worker index → pid of its latest start."""
        return {int(i): int(pid) for i, pid in STARTED.findall(self.text())}

    def worker_of(self, client_port: int, timeout: float = 10) -> int:
        """The worker that logged the connection from `client_port`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker, _conn, port in CONNECTED.findall(self.text()):
                if int(port) == client_port:
                    return int(worker)
            time.sleep(0.02)  # the log is written by a thread of the worker: poll it
        raise AssertionError(f"no worker logged the connection from port {client_port}")

    def imap_on(self, worker: int, tries: int = 60) -> RawImap:
        """An IMAP connection (not logged in) that the kernel gave to `worker`."""
        for _ in range(tries):
            c = RawImap(self.server.ports["imap"])
            if self.worker_of(c.sock.getsockname()[1]) == worker:
                return c
            c.close()
        raise AssertionError(f"no connection landed on w{worker} in {tries} tries")

    def login_on(self, worker: int, user: str = "alice@example.test") -> RawImap:
        c = self.imap_on(worker)
        assert c.login(user, PASSWORD)[-1].split()[1] == b"OK"
        return c

    def pop3_on(self, worker: int, tries: int = 60) -> poplib.POP3:
        for _ in range(tries):
            pop = poplib.POP3("127.0.0.1", self.server.ports["pop3"], timeout=30)
            if self.worker_of(pop.sock.getsockname()[1]) == worker:
                return pop
            pop.close()
        raise AssertionError(f"no POP3 connection landed on w{worker} in {tries} tries")

    def smtp_on(self, worker: int, tries: int = 60) -> smtplib.SMTP:
        for _ in range(tries):
            smtp = smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], "client.test", timeout=30)
            sock = smtp.sock
            assert sock is not None
            if self.worker_of(sock.getsockname()[1]) == worker:
                return smtp
            smtp.close()
        raise AssertionError(f"no SMTP connection landed on w{worker} in {tries} tries")

    def stop(self) -> None:
        self.server.stop()
        with_group_gone(self.server.proc.pid)


def with_group_gone(pgid: int) -> None:
    """Nothing of the server's process group may be left (a test that failed midway)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by an init that is slow) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def provision(config: Path) -> None:
    add_accounts(config, "example.test", ("alice@example.test", *USERS))


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    started: list[Cluster] = []

    def start(
        backend: str = "sqlite", listen: tuple[str, ...] = ("smtp", "imap"), per_ip: int = 1000
    ) -> Cluster:
        config = write_config(tmp_path, backend=backend, listen=listen, per_ip=per_ip)
        provision(config)
        cluster = Cluster(config, tmp_path / "serve.log", listen)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory()


def exists(n: int) -> Callable[[list[bytes]], bool]:
    return lambda lines: f"* {n} EXISTS".encode() in lines


def flagged(lines: list[bytes]) -> bool:
    return any(re.match(rb"\* 1 FETCH \(.*FLAGS \([^)]*\\Flagged", line) for line in lines)


def deliver(smtp: smtplib.SMTP, subject: str = "hello") -> None:
    msg = f"From: x@other.test\r\nSubject: {subject}\r\n\r\nbody\r\n"
    smtp.sendmail("x@other.test", ["alice@example.test"], msg)


def idle_sees_the_other_worker(cluster: Cluster) -> None:
    """IDLE on w1; a delivery and a STORE on w2 reach it within FAST seconds each."""
    idler = cluster.login_on(1)
    other = cluster.login_on(2)
    try:
        ok(idler.cmd("SELECT INBOX"))
        idler.send(b"i1 IDLE\r\n")
        assert idler.line().startswith(b"+ ")
        smtp = cluster.smtp_on(2)
        with smtp:
            started = time.monotonic()
            deliver(smtp)
        read_until(idler, exists(1), timeout=FAST)
        print(f"EXISTS {1000 * (time.monotonic() - started):.0f} ms after the 250")
        ok(other.cmd("SELECT INBOX"))
        started = time.monotonic()
        ok(other.cmd("STORE 1 +FLAGS (\\Flagged)"))
        read_until(idler, flagged, timeout=FAST)
        print(f"FETCH FLAGS {1000 * (time.monotonic() - started):.0f} ms after the STORE")
        idler.send(b"DONE\r\n")
        assert idler.until(b"i1")[-1].startswith(b"i1 OK")
    finally:
        idler.close()
        other.close()


def test_connections_land_on_both_workers(cluster: Cluster) -> None:
    seen: set[int] = set()
    for _ in range(60):
        c = RawImap(cluster.server.ports["imap"])
        seen.add(cluster.worker_of(c.sock.getsockname()[1]))
        c.close()
        if seen == {1, 2}:
            break
    assert seen == {1, 2}
    out = cluster.text()
    assert "w1 pillarbox" in out and "w2 pillarbox" in out


def test_idle_sees_a_delivery_and_a_store_made_in_the_other_worker(cluster: Cluster) -> None:
    idle_sees_the_other_worker(cluster)


def test_notify_sees_an_append_made_in_the_other_worker(cluster: Cluster) -> None:
    """RFC 5465: NOTIFY on w1 reports w2's APPEND into an unselected mailbox."""
    watcher = cluster.login_on(1)
    other = cluster.login_on(2)
    events = "(MessageNew MessageExpunge)"
    try:
        ok(other.cmd("CREATE Reading"))
        ok(other.cmd("CREATE Work"))
        ok(watcher.cmd("SELECT Reading"))
        ok(watcher.cmd(f"NOTIFY SET (selected {events}) (personal {events})"))
        append(other, "Work")
        work = re.compile(rb'\* STATUS "?Work"? \(')
        lines = read_until(watcher, lambda got: any(work.match(x) for x in got), timeout=FAST)
        status = next(x for x in lines if work.match(x))
        assert b"MESSAGES 1" in status
    finally:
        watcher.close()
        other.close()


@pytest.mark.slow
def test_sigkill_of_a_worker_loses_no_acknowledged_message_and_it_comes_back(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    """400 concurrent deliveries over both workers; SIGKILL of w1 once 100 got their
    250: every acknowledged message is stored whole, w1 is restarted and serves."""
    cluster = cluster_factory(listen=("smtp", "imap"))
    victim = cluster.pids()[1]
    acked = asyncio.run(
        load(cluster.server.ports["smtp"], 400, 100, lambda: os.kill(victim, signal.SIGKILL))
    )
    assert len(acked) >= 100
    wait_until(lambda: cluster.pids()[1] != victim, "w1 restarted")
    wait_until(lambda: "w1 serving again" in cluster.text(), "w1 serving again", timeout=60)
    assert cluster.server.proc.poll() is None  # the master lives on
    cluster.login_on(1).close()  # the new w1 takes connections
    assert "w1 died unexpectedly (signal 9)" in cluster.text()
    cluster.stop()
    stored = asyncio.run(stored_tokens(tmp_path / "data"))
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged messages lost: {sorted(missing)[:10]}"
    print(f"acked {len(acked)}, stored {len(stored)} of 400 attempted")


def test_sigterm_to_the_master_stops_every_worker_cleanly(cluster: Cluster) -> None:
    pids = cluster.pids()
    assert sorted(pids) == [1, 2]
    cluster.server.stop()
    assert cluster.server.proc.returncode == 0
    assert not [pid for pid in pids.values() if alive(pid)]
    out = cluster.text()
    for worker in (1, 2):
        assert f"w{worker} pillarbox.app: stopped" in out
    assert "died unexpectedly" not in out and "Traceback" not in out


def test_workers_do_not_outlive_a_master_killed_with_sigkill(cluster: Cluster) -> None:
    pids = cluster.pids()
    cluster.server.kill_master()
    wait_until(lambda: not any(alive(pid) for pid in pids.values()), "the workers to exit")


def test_idle_across_workers_on_postgresql(cluster_factory: Callable[..., Cluster]) -> None:
    """On PostgreSQL each worker is a node with its own relay: no hub needed."""
    idle_sees_the_other_worker(cluster_factory(backend="postgres"))


def test_a_password_change_refuses_the_old_password_in_every_worker(cluster: Cluster) -> None:
    """Both workers have verified (and remembered, in the memory they share) alice's
    password; `pillarbox user passwd` in another process changes it, and at once neither
    worker takes the old one, and both take the new one: the remembered digest is bound
    to the stored hash, which every login reads."""
    for worker in (1, 2):
        cluster.login_on(worker).close()
    new = PASSWORD + " changed"
    user = "alice@example.test"
    cli(cluster.config, "user", "passwd", user, "--password-stdin", stdin=new + "\n")
    for worker in (1, 2):
        c = cluster.imap_on(worker)
        assert c.login("alice@example.test", PASSWORD)[-1].split()[1] == b"NO"
        c.close()
        c = cluster.imap_on(worker)
        assert c.login("alice@example.test", new)[-1].split()[1] == b"OK"
        c.close()


def test_pop3_in_use_holds_across_workers(cluster_factory: Callable[..., Cluster]) -> None:
    """RFC 1939 §8: one POP3 session per maildrop, whichever worker the second lands on;
    after the first's QUIT the other worker opens it."""
    cluster = cluster_factory(listen=("smtp", "imap", "pop3"))
    first = cluster.pop3_on(1)
    first.user("alice@example.test")
    assert first.pass_(PASSWORD).startswith(b"+OK")
    second = cluster.pop3_on(2)
    second.user("alice@example.test")
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_(PASSWORD)
    assert refused.value.args[0].startswith(b"-ERR [IN-USE]")
    second.close()
    first.quit()
    again = cluster.pop3_on(2)
    again.user("alice@example.test")
    assert again.pass_(PASSWORD).startswith(b"+OK")
    again.quit()


def test_the_per_address_cap_counts_both_workers_connections(
    cluster_factory: Callable[..., Cluster],
) -> None:
    """`max_connections_per_ip = 4` is one cap for the server, not one per worker: with
    four connections open over both workers, a fifth is refused on whichever worker the
    kernel gives it; once one closes, a new one is served."""
    cluster = cluster_factory(per_ip=4)
    held = [cluster.imap_on(1), cluster.imap_on(2)]
    held += [RawImap(cluster.server.ports["imap"]) for _ in range(2)]
    assert all(c.greeting.startswith(b"* OK") for c in held)
    for _ in range(4):  # spread over the workers by the kernel's hash of the client port
        extra = RawImap(cluster.server.ports["imap"])
        assert extra.greeting.startswith(b"* BYE [UNAVAILABLE]"), extra.greeting
        extra.close()
    held.pop().close()

    def served() -> bool:
        c = RawImap(cluster.server.ports["imap"])
        ok_ = c.greeting.startswith(b"* OK")
        c.close()
        return ok_

    wait_until(served, "a connection served once one of the four closed", timeout=10)
    for c in held:
        c.close()
