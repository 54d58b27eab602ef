"""The state the worker processes share in memory (`workers.shared`): connection caps,
sessions per account and verified credentials, seen by two real processes attached to
one segment, and a dead worker's counts dropped by the master.

Pins: the caps hold across the processes (total, per address); the sessions-per-account
cap holds across them; `drop_worker` frees exactly what a killed worker held; a digest
added in one process is found in the other and no other digest is; a full probe window
fails open for the per-address caps while the total still holds; credentials are
evicted soonest-expiry first and never found after expiry.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pillarbox.services.account_sessions import AccountSessions, SessionCounts, TooManySessions
from pillarbox.services.credential_cache import CredentialStore
from pillarbox.workers.counts import REFUSED
from pillarbox.workers.shared import WorkerShared

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A process attached as one worker, driven one command per line."""

    def __init__(self, shared: WorkerShared, index: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
        handle = shared.handle.encode()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.workers.shared_child", handle, str(index)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
            pass_fds=shared.pass_fds,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        assert ready, "the child did not answer within 30 s"
        return self.proc.stdout.readline().strip()

    def __call__(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._line()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        """End the child (EOF on its stdin) and close both pipes."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()


@pytest.fixture
def master() -> Iterator[WorkerShared]:
    shared = WorkerShared.create(2)
    yield shared
    shared.close()


@pytest.fixture
def workers(master: WorkerShared) -> Iterator[tuple[Child, Child]]:
    a, b = Child(master, 0), Child(master, 1)
    yield a, b
    a.close()
    b.close()


def test_connection_caps_hold_across_two_processes(workers: tuple[Child, Child]) -> None:
    a, b = workers
    assert a("admit imap 192.0.2.1") == "admitted"
    assert a("admit imap 192.0.2.1") == "admitted"
    assert b("admit imap 192.0.2.1") == REFUSED  # 2 per address, counted in both
    assert b("admit pop3 192.0.2.1") == "admitted"  # another listener has its own caps
    assert b("admit imap 192.0.2.2") == "admitted"
    assert a("admit imap 192.0.2.3") == REFUSED  # 3 in all
    assert a("release imap 192.0.2.1") == "ok"
    assert b("admit imap 192.0.2.1") == "admitted"  # released in A, free in B


def test_a_dead_worker_s_connections_are_dropped(
    master: WorkerShared, workers: tuple[Child, Child]
) -> None:
    a, b = workers
    assert a("admit imap 192.0.2.1") == "admitted"
    assert a("admit imap 192.0.2.1") == "admitted"
    assert b("admit imap 192.0.2.2") == "admitted"
    a.kill()  # dies holding two connections
    assert b("admit imap 192.0.2.1") == REFUSED
    master.drop_worker(0)
    assert b("admit imap 192.0.2.1") == "admitted"
    assert b("admit imap 192.0.2.1") == "admitted"
    assert b("admit imap 192.0.2.3") == REFUSED  # B's own three still count


def test_sessions_per_account_hold_across_processes_and_die_with_a_worker(
    master: WorkerShared, workers: tuple[Child, Child]
) -> None:
    a, b = workers
    assert a("acquire 7 192.0.2.1 2") == "True"
    assert b("acquire 7 192.0.2.1 2") == "True"
    assert a("acquire 7 192.0.2.1 2") == "False"
    assert a("acquire 7 192.0.2.2 2") == "True"  # another address
    assert a("acquire 8 192.0.2.1 2") == "True"  # another account
    assert b("end 7 192.0.2.1") == "ok"
    assert a("acquire 7 192.0.2.1 2") == "True"
    a.kill()
    assert b("acquire 7 192.0.2.1 2") == "False"
    master.drop_worker(0)
    assert b("acquire 7 192.0.2.1 2") == "True"


def test_verified_credentials_are_seen_by_every_process(workers: tuple[Child, Child]) -> None:
    a, b = workers
    digest, other = bytes(range(32)).hex(), bytes(range(1, 33)).hex()
    assert b(f"has {digest}") == "False"
    assert a(f"add {digest}") == "ok"
    assert b(f"has {digest}") == "True"
    assert b(f"has {other}") == "False"
    assert a(f"has {other}") == "False"


def test_the_caps_fail_open_per_address_when_the_window_is_full() -> None:
    master = WorkerShared.create(1, cap_slots=1)  # one window of 16 slots in all
    worker = WorkerShared.attach(master.handle, 0)
    try:
        caps = worker.caps_for("smtp", max_connections=20, max_per_ip=1, rate_per_ip=0)
        for i in range(16):
            assert caps.admit(f"192.0.2.{i}") is None
        assert caps.admit("192.0.2.1") == REFUSED  # tracked: its cap holds
        assert caps.admit("198.51.100.1") is None  # not tracked: admitted
        assert caps.admit("198.51.100.1") is None  # (its per-address cap is off)
        assert caps.active() == 18
        caps.release("198.51.100.1")
        caps.release("198.51.100.1")
        caps.release("192.0.2.0")
        assert caps.active() == 15
        assert caps.admit("198.51.100.1") is None  # a slot is free: tracked again
        assert caps.admit("198.51.100.1") == REFUSED
        for i in range(4):
            assert caps.admit(f"203.0.113.{i}") is None  # untracked, up to the total
        assert caps.admit("203.0.113.9") == REFUSED  # 20 in all
    finally:
        worker.close()
        master.close()


def test_the_rate_bucket_is_shared_by_the_workers() -> None:
    master = WorkerShared.create(2)
    one, two = WorkerShared.attach(master.handle, 0), WorkerShared.attach(master.handle, 1)
    try:
        caps = [
            w.caps_for("imap", max_connections=100, max_per_ip=100, rate_per_ip=3)
            for w in (one, two)
        ]
        assert [caps[i % 2].admit("192.0.2.1") for i in range(4)] == [None, None, None, REFUSED]
        assert caps[1].admit("192.0.2.2") is None  # per address
    finally:
        for shared in (one, two, master):
            shared.close()


def test_account_sessions_over_the_shared_counts() -> None:
    master = WorkerShared.create(2)
    one, two = WorkerShared.attach(master.handle, 0), WorkerShared.attach(master.handle, 1)
    try:
        counts: list[SessionCounts] = [one.account_sessions, two.account_sessions]
        first, second = AccountSessions(1, counts[0]), AccountSessions(1, counts[1])
        first.acquire(5, "192.0.2.1")
        with pytest.raises(TooManySessions):
            second.acquire(5, "192.0.2.1")
        first.release(5, "192.0.2.1")
        second.acquire(5, "192.0.2.1")
    finally:
        for shared in (one, two, master):
            shared.close()


def test_credentials_evict_the_soonest_expiry_and_honour_expiry() -> None:
    master = WorkerShared.create(1, credential_slots=8)  # one set of 8
    worker = WorkerShared.attach(master.handle, 0)
    try:
        store: CredentialStore = worker.credentials
        digests = [bytes([i]) * 32 for i in range(1, 10)]
        for i, digest in enumerate(digests[:8]):
            store.add(digest, 1000.0 + i)
        assert all(store.contains(d, 999.0) for d in digests[:8])
        store.add(digests[8], 2000.0)  # the set is full: the soonest to expire goes
        assert not store.contains(digests[0], 999.0)
        assert all(store.contains(d, 999.0) for d in digests[1:])
        assert not store.contains(digests[1], 1001.0)  # expired
        store.add(digests[1], 3000.0)  # re-added: refreshed in place
        assert store.contains(digests[1], 2500.0)
        assert not store.contains(b"\x02" * 31, 0.0)  # a prefix is another digest
        long = b"\x77" * 64
        store.add(long, 5000.0)
        assert store.contains(long, 0.0) and not store.contains(long[:32], 0.0)
        assert not store.contains(b"", 0.0)
    finally:
        worker.close()
        master.close()


def test_a_handle_is_refused_for_a_worker_index_out_of_range(master: WorkerShared) -> None:
    with pytest.raises(ValueError):
        WorkerShared.attach(master.handle, 2)
    assert len(master.credential_key) == 32
    other = WorkerShared.create(1)
    try:
        assert other.credential_key != master.credential_key
        shown = time.monotonic()
        assert shown > 0
    finally:
        other.close()
