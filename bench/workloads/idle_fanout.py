"""idle_fanout: N connections IDLE on one INBOX; how fast a delivery and a flag reach all.

Issue 13's "push at scale": one change must reach every idle session of an account. Set-up
opens N IMAP connections as one account (``idle@``, whose light password hash keeps
thousands of log-ins short, see ``servers.IDLE_USER``), each ``SELECT INBOX`` + ``IDLE``,
from a few client processes (``bench.idle_client``: one asyncio loop each, N/1,000 of them
up to 4, so the client is not one core reading every socket). One more connection (the
*storer*) stays selected, and a delivery connection stays open: LMTP into Dovecot on the
reference side (its 250 comes once the message is stored), SMTP on Pillarbox's. A run is
one round:

1. every client process arms its connections to note the first `` EXISTS`` they receive;
   one message is delivered and the 250 reply timestamped; the latency of a connection is
   its EXISTS's arrival minus that time (0 if it arrived first);
2. the storer sends ``NOOP`` (to learn the new count), then the clients arm for
   ``\\Flagged``, the storer sends ``STORE n +FLAGS (\\Flagged)`` on the new message and its
   tagged OK is timestamped; each connection's latency is its ``* n FETCH (FLAGS ...)``'s
   arrival minus that time.

Reported per run: p50, p99 and max over the N connections of each latency; the server's
memory per idle connection (PSS summed over the server's process tree with the N
connections idling, minus the same before they connected, divided by N); the server's and
the client processes' CPU time for the round. A connection that sees nothing within
``COLLECT_TIMEOUT`` fails the run. The INBOX grows by one message a run.

N: ``--idle-connections`` (default 2,000; quick 200). Both sides are configured to accept
N connections on one account from one address (``cli.py`` passes the limit to both).

``idle_fanout_scale`` is the same round at the issue's scale, ``--idle-scale-connections``
(default 10,000; quick 1,000), on the Pillarbox side only (`IdleFanoutScale`): Dovecot
runs one ``imap`` process per IDLE connection, ~0.65 MiB of PSS each, so 10,000 of them
is several GiB and minutes of process starts on this machine for a figure known to be
seconds (see bench/README.md); its 2,000-connection row stays in ``idle_fanout``.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar

from bench.corpus import make_message, sender_address
from bench.idle_client import raise_fd_limit, worker
from bench.procstat import cpu_seconds, process_tree, pss_kib
from bench.wire import ImapClient, PipelinedSender, imap_login, pipelined_sender
from bench.workloads.base import Context, Metric, Workload, WorkloadError, percentile

FULL_CONNECTIONS = 2000
QUICK_CONNECTIONS = 200
#: idle_fanout_scale's N: the issue's 10,000 (quick: enough to show the scale is wired).
SCALE_FULL_CONNECTIONS = 10_000
SCALE_QUICK_CONNECTIONS = 1_000
#: One client process per this many connections, at most MAX_CLIENTS.
PER_CLIENT = 1000
MAX_CLIENTS = 4
#: How long every connection gets to see an update (Dovecot's fallback poll is 30 s).
COLLECT_TIMEOUT = 90.0
#: Margin on top of the client processes' own deadlines before they count as hung.
REPLY_MARGIN = 30.0
MESSAGE_SIZE = 2_000
EVENTS = ("exists", "flags")


def connection_count(ctx: Context) -> int:
    """N for this context: ``--idle-connections`` if given, else by ``--quick``."""
    given = ctx.options.get("idle_connections")
    if given:
        return int(given)
    return QUICK_CONNECTIONS if ctx.quick else FULL_CONNECTIONS


def scale_connection_count(ctx: Context) -> int:
    """idle_fanout_scale's N: ``--idle-scale-connections`` if given, else by ``--quick``."""
    given = ctx.options.get("idle_scale_connections")
    if given:
        return int(given)
    return SCALE_QUICK_CONNECTIONS if ctx.quick else SCALE_FULL_CONNECTIONS


class IdleFanout(Workload):
    name: ClassVar[str] = "idle_fanout"
    description: ClassVar[str] = (
        "N connections IDLE on one INBOX: delivery -> EXISTS, STORE -> FETCH FLAGS, memory"
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.connections = self.connection_count(ctx)
        self.clients = max(1, min(MAX_CLIENTS, math.ceil(self.connections / PER_CLIENT)))
        self.lmtp = self.endpoint.lmtp_port is not None
        self.processes: list[tuple[BaseProcess, Connection]] = []
        self.storer: ImapClient | None = None
        self.sender: PipelinedSender | None = None
        self.baseline_kib = 0
        self.exists = 0

    @staticmethod
    def connection_count(ctx: Context) -> int:
        return connection_count(ctx)

    def params(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "client_processes": self.clients,
            "account": self.endpoint.idle_user,
            "delivery": "LMTP" if self.lmtp else "SMTP",
            "memory": "PSS summed over the server's process tree, minus before connecting",
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        out = []
        for event, what in (
            ("exists", "250 of the delivery -> '* n EXISTS' on each idle connection"),
            ("flags", "tagged OK of the STORE -> '* n FETCH (FLAGS' on each idle connection"),
        ):
            for stat in ("p50", "p99", "max"):
                out.append(Metric(f"{event}_{stat}_ms", "ms", False, what))
        out += [
            Metric("kib_per_connection", "KiB", False, "server PSS per idle connection"),
            Metric("server_cpu_ms", "ms", False, "server CPU for one round (both events)"),
            Metric("client_cpu_ms", "ms", False, "client processes' CPU for one round"),
        ]
        return out

    # -- set-up ------------------------------------------------------------------------------

    def _pids(self) -> list[int]:
        roots = self.endpoint.server_pids  # every node's, when the side has several
        if not roots:
            raise WorkloadError("the side gives no server pid to measure")
        return [pid for root in roots for pid in process_tree(root)]

    def _ask(self, message: tuple[Any, ...], expect: str, timeout: float) -> list[Any]:
        """Send *message* to every client process; their answers, which must be *expect*."""
        for _, pipe in self.processes:
            pipe.send(message)
        return [self._answer(pipe, expect, timeout) for _, pipe in self.processes]

    @staticmethod
    def _answer(pipe: Connection, expect: str, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise WorkloadError(f"a client process did not answer within {timeout:.0f}s")
        answer = pipe.recv()
        if answer[0] != expect:
            raise WorkloadError(f"client process: {answer[1:]}")
        return answer

    def prepare(self) -> dict[str, object]:
        if self.endpoint.imap_port is None:
            raise WorkloadError(f"{self.endpoint.side} serves no IMAP")
        fds = raise_fd_limit()
        self.baseline_kib = pss_kib(self._pids())
        self.storer = imap_login(self.endpoint, self.endpoint.idle_user)
        self.exists = self.storer.select("INBOX")
        self.sender = pipelined_sender(self.endpoint, lmtp=self.lmtp)
        began = time.perf_counter()
        spawn = multiprocessing.get_context("spawn")
        shares = [
            self.connections // self.clients + (i < self.connections % self.clients)
            for i in range(self.clients)
        ]
        for share in shares:
            ours, theirs = spawn.Pipe()
            spec = {
                "count": share,
                "host": self.endpoint.host,
                # With several nodes each client process watches from the next node,
                # and deliveries and STOREs come in through another in turn.
                "port": self.endpoint.port("imap"),
                "user": self.endpoint.idle_user,
                "password": self.endpoint.password,
            }
            process = spawn.Process(target=worker, args=(theirs, spec), daemon=True)
            process.start()
            theirs.close()
            self.processes.append((process, ours))
        timeout = 60.0 + self.connections * 0.05
        for _, pipe in self.processes:
            self._answer(pipe, "ready", timeout)
        opened = time.perf_counter() - began
        self.log(f"{self.connections} connections idling after {opened:.1f}s")
        return {
            "connections": self.connections,
            "connect_login_select_idle_seconds": round(opened, 1),
            "server_pss_before_kib": self.baseline_kib,
            "client_fd_limit": fds,
        }

    def finish(self) -> None:
        for process, pipe in self.processes:
            try:
                pipe.send(("stop",))
                if pipe.poll(10.0):
                    pipe.recv()
            except (OSError, EOFError):
                pass
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join(5.0)
            pipe.close()
        self.processes = []
        if self.storer is not None:
            self.storer.logout()
            self.storer = None
        if self.sender is not None:
            self.sender.close()
            self.sender = None

    # -- one round ---------------------------------------------------------------------------

    def _measure(self, token: bytes, action: Any) -> tuple[list[float], float]:
        """Arm the clients for *token*, run *action* (returns its reference time), collect.

        Returns each connection's latency in seconds and the clients' CPU seconds."""
        self._ask(("arm", token), "armed", REPLY_MARGIN)
        reference: float = action()
        answers = self._ask(("collect", COLLECT_TIMEOUT), "seen", COLLECT_TIMEOUT + REPLY_MARGIN)
        seen = [t for answer in answers for t in answer[1]]
        missing = sum(1 for t in seen if t is None)
        if missing:
            raise WorkloadError(
                f"{missing} of {len(seen)} idle connections saw no {token.decode().strip()} "
                f"within {COLLECT_TIMEOUT:.0f}s"
            )
        latencies = [max(0.0, t - reference) for t in seen if t is not None]
        return latencies, sum(answer[2] for answer in answers)

    def _deliver(self, index: int) -> float:
        assert self.sender is not None
        user = self.endpoint.idle_user
        message = make_message(70_000 + index, user, MESSAGE_SIZE, seed=13)
        self.sender.send(sender_address(70_000 + index), user, message)
        return time.monotonic()

    def _flag(self) -> float:
        assert self.storer is not None
        self.storer.command(f"STORE {self.exists} +FLAGS (\\Flagged)")
        return time.monotonic()

    def run(self, index: int) -> dict[str, float]:
        assert self.storer is not None
        pids = self._pids()
        memory = (pss_kib(pids) - self.baseline_kib) / self.connections
        server_cpu = cpu_seconds(pids)
        before = self.exists
        exists, client_cpu = self._measure(b" EXISTS", lambda: self._deliver(index))
        # With several nodes the storer may be on a node that learns of the delivery a few
        # milliseconds after the idle clients' node (the change relay): ask until it has.
        deadline = time.monotonic() + COLLECT_TIMEOUT
        while self.exists == before and time.monotonic() < deadline:
            for line in self.storer.command("NOOP").untagged:
                parts = line.split()
                if len(parts) >= 3 and parts[2].upper() == b"EXISTS":
                    self.exists = int(parts[1])
        if self.exists == before:
            raise WorkloadError(f"the storer saw no new message within {COLLECT_TIMEOUT:.0f}s")
        flags, more_cpu = self._measure(b"\\Flagged", self._flag)
        metrics = {
            "kib_per_connection": memory,
            "server_cpu_ms": (cpu_seconds(self._pids()) - server_cpu) * 1000,
            "client_cpu_ms": (client_cpu + more_cpu) * 1000,
        }
        for event, samples in zip(EVENTS, (exists, flags), strict=True):
            metrics[f"{event}_p50_ms"] = percentile(samples, 50) * 1000
            metrics[f"{event}_p99_ms"] = percentile(samples, 99) * 1000
            metrics[f"{event}_max_ms"] = max(samples) * 1000
        return metrics


class IdleFanoutScale(IdleFanout):
    """The idle_fanout round at 10,000 connections, on the Pillarbox side only (the
    module's docstring says why not on Dovecot's)."""

    name: ClassVar[str] = "idle_fanout_scale"
    description: ClassVar[str] = (
        "idle_fanout at 10,000 connections (Pillarbox only: Dovecot needs a process each)"
    )
    sides: ClassVar[frozenset[str] | None] = frozenset({"pillarbox"})
    skip_reason: ClassVar[str] = (
        "Pillarbox only: Dovecot runs one imap process per IDLE connection"
        " (idle_fanout compares both sides)"
    )

    @staticmethod
    def connection_count(ctx: Context) -> int:
        return scale_connection_count(ctx)
