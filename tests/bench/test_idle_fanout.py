"""The idle_fanout workload: its client's token watching, the /proc readings, and one real
run against a Pillarbox server with a handful of IDLE connections."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import bench.cli as cli
import bench.workloads.idle_fanout as idle_fanout
import pytest
from bench.idle_client import Fleet, IdleConnection
from bench.pillarbox_server import PillarboxServer
from bench.procstat import cpu_seconds, process_tree, pss_kib
from bench.servers import Endpoint
from bench.workloads import Context
from bench.workloads.idle_fanout import IdleFanout, IdleFanoutScale

ENDPOINT = Endpoint(side="test", smtp_port=1, imap_port=2, pop3_port=3)


def test_connection_count_and_client_processes_follow_the_command_line() -> None:
    def workload(quick: bool, given: str | None = None) -> IdleFanout:
        options = {"idle_connections": given} if given else {}
        return IdleFanout(Context(ENDPOINT, quick, lambda _: None, options))

    assert workload(False).connections == 2000 and workload(False).clients == 2
    assert workload(True).connections == 200 and workload(True).clients == 1
    big = workload(True, "10000")
    assert big.connections == 10000 and big.clients == 4
    assert big.params()["delivery"] == "SMTP"

    def scale(quick: bool, given: str | None = None) -> IdleFanoutScale:
        options = {"idle_scale_connections": given} if given else {}
        return IdleFanoutScale(Context(ENDPOINT, quick, lambda _: None, options))

    assert scale(False).connections == 10_000 and scale(False).clients == 4
    assert scale(True).connections == 1_000 and scale(True, "7").connections == 7
    assert IdleFanoutScale.sides == frozenset({"pillarbox"}) and IdleFanout.sides is None


def test_a_token_split_across_reads_is_seen_once_per_arm() -> None:
    async def scenario() -> None:
        fleet = Fleet()
        first, second = IdleConnection(fleet._seen), IdleConnection(fleet._seen)
        fleet.connections += [first, second]
        fleet.arm(b" EXISTS")
        first.data_received(b"* 3 EXI")
        assert first.seen is None and not fleet.all_seen.is_set()
        first.data_received(b"STS\r\n")
        seen = first.seen
        assert seen is not None
        first.data_received(b"* 4 EXISTS\r\n")
        assert first.seen == seen  # the first arrival counts
        assert await fleet.collect(0.05) == [seen, None]  # second never saw it: times out
        second.data_received(b"* 1 FETCH (FLAGS (\\Flagged))\r\n* 3 EXISTS\r\n")
        assert fleet.all_seen.is_set()
        fleet.arm(b"\\Flagged")
        assert [c.seen for c in fleet.connections] == [None, None]
        second.data_received(b"* 3 EXISTS\r\n")
        assert second.seen is None

    asyncio.run(scenario())


def test_the_raw_watch_notes_each_connection_once_and_ends_with_collect() -> None:
    """`Fleet.watch` (epoll over the raw sockets): a connection sees the token in its own
    bytes only, one closed by the server stops being waited for, the ``collect`` from the
    pipe sets the deadline, and asyncio reads the connections again afterwards."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        fleet = Fleet()
        peers = []
        for _ in range(3):
            ours, peer = socket.socketpair()
            _, conn = await loop.create_connection(lambda: IdleConnection(fleet._seen), sock=ours)
            fleet.connections.append(conn)
            peers.append(peer)
        control, workload = multiprocessing.Pipe()
        try:
            fleet.arm(b" EXISTS")
            peers[0].sendall(b"* 1 FETCH (FLAGS (\\Seen))\r\n* 3 EXISTS\r\n")
            peers[1].close()  # gone: never sees it, not waited for
            peers[2].sendall(b"* 2 EXPUNGE\r\n")  # not the token
            workload.send(("collect", 0.2))
            began = time.monotonic()
            seen = fleet.watch(control)
            assert time.monotonic() - began < 5
            assert seen[0] is not None and seen[0] >= began - 1 and seen[1:] == [None, None]
            # The next event: what is left from the last one is not taken for the token.
            peers[0].sendall(b"* 1 RECENT\r\n* 9 FETCH (FLAGS (\\Flagged))\r\n")
            peers[2].sendall(b"* 2 RECENT\r\n")
            fleet.arm(b"\\Flagged")
            peers[2].sendall(b"* 2 FETCH (FLAGS (\\Flagged))\r\n")
            workload.send(("collect", 0.2))
            seen = fleet.watch(control)
            assert seen[0] is None and seen[1] is None and seen[2] is not None
            await fleet.close()  # reading goes back to asyncio: DONE, LOGOUT
            transport = fleet.connections[2].transport
            assert transport is not None and transport.is_closing()
        finally:
            for peer in peers:
                peer.close()
            control.close()
            workload.close()
            for conn in fleet.connections:
                assert conn.transport is not None
                conn.transport.close()

    asyncio.run(scenario())


def test_process_tree_memory_and_cpu_of_this_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        tree = process_tree(os.getpid())
        assert tree[0] == os.getpid() and child.pid in tree
        assert pss_kib([os.getpid()]) > 1000  # a Python interpreter is megabytes
        assert pss_kib(tree) > pss_kib([os.getpid()])
        assert cpu_seconds([os.getpid()]) > 0
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)


def test_idle_fanout_against_pillarbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six IDLE connections over two client processes each see the delivery's EXISTS and
    the STORE's FLAGS; every figure is produced for both runs."""
    monkeypatch.setattr(idle_fanout, "PER_CLIENT", 3)
    with PillarboxServer(lambda _: None, user_count=1) as endpoint:
        assert endpoint.server_pid is not None
        ctx = Context(endpoint, True, lambda _: None, {"idle_connections": "6"})
        result = cli.run_workload(IdleFanout, ctx, runs=2)
    assert result["error"] is None
    assert result["params"]["connections"] == 6
    assert result["params"]["client_processes"] == 2
    assert result["setup"]["server_pss_before_kib"] > 1000
    metrics = result["metrics"]
    assert set(metrics) == {m.name for m in IdleFanout.metrics()}
    assert all(figure["runs"] == 2 for figure in metrics.values())
    for event in ("exists", "flags"):
        p50, p99, top = (metrics[f"{event}_{s}_ms"]["median"] for s in ("p50", "p99", "max"))
        assert 0 <= p50 <= p99 <= top < idle_fanout.COLLECT_TIMEOUT * 1000
    assert metrics["server_cpu_ms"]["median"] >= 0
