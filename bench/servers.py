"""What every server under test looks like to the workloads, and how we wait for one.

A *side* is one mail system under test (Pillarbox, or Postfix + Dovecot). It is started by
a :class:`ServerProcess` subclass and described to the workloads by an :class:`Endpoint`:
loopback ports, the account list and the shared password. Workloads only ever see an
``Endpoint``, so they cannot tell which server they are talking to.

Must not: connect anywhere but 127.0.0.1, or wait without a deadline.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

Log = Callable[[str], None]
OWNER_FILE = "bench-owner.pid"

HOST = "127.0.0.1"
DOMAIN = "example.test"
PASSWORD = "bench-Password-1"
USER_COUNT = 100
#: Quick mode makes fewer accounts: creating one with the pillarbox CLI costs ~0.7 s.
QUICK_USER_COUNT = 20
#: The large-mailbox workload owns this extra account, so its 100,000-message INBOX never
#: slows down the workloads that use the 100 ordinary accounts.
BIG_USER = f"big@{DOMAIN}"
#: The idle_fanout workload's account, whose INBOX thousands of connections watch. Its
#: password hash is argon2id at the lightest parameters (see ``light_password_hash``), on
#: both sides, so that thousands of log-ins in set-up take seconds, not the ~0.2 s of CPU
#: each that the ordinary accounts' hashes cost. Log-ins are never part of its figures.
IDLE_USER = f"idle@{DOMAIN}"
#: The login_heavy workload's accounts (login000…): a mailbox each that only it touches,
#: and on the reference side plain-text passwords by default (Dovecot's fastest login),
#: while Pillarbox keeps its argon2id hashes (``--reference-passwords`` to choose).
LOGIN_USER_COUNT = 50
QUICK_LOGIN_USER_COUNT = 10
#: Connections a side must accept unless told otherwise (Pillarbox's default cap).
DEFAULT_CONNECTION_LIMIT = 2000


def user_address(index: int) -> str:
    """The address of ordinary account *index* (0-based): u000@example.test …"""
    return f"u{index:03d}@{DOMAIN}"


def all_users(count: int = USER_COUNT) -> tuple[str, ...]:
    return tuple(user_address(i) for i in range(count))


def login_users(count: int = LOGIN_USER_COUNT) -> tuple[str, ...]:
    """The login_heavy workload's own accounts."""
    return tuple(f"login{i:03d}@{DOMAIN}" for i in range(count))


@dataclass(frozen=True)
class NodePorts:
    """One node of a side that runs several (Pillarbox ``--nodes N`` on one database)."""

    smtp_port: int | None
    imap_port: int | None
    pop3_port: int | None
    server_pid: int | None = None


PROTOCOLS = ("smtp", "imap", "pop3")


def _turns() -> dict[str, itertools.count[int]]:
    return {kind: itertools.count() for kind in PROTOCOLS}


@dataclass(frozen=True)
class Endpoint:
    """Where and how a workload reaches one side. A port of ``None`` means "not served".

    A side of several nodes lists them in ``nodes`` (the single ports are the first
    node's); `port` then gives each new connection the next node in turn, so a
    workload's clients are split between the nodes without knowing there are any."""

    side: str
    smtp_port: int | None
    imap_port: int | None
    pop3_port: int | None
    #: LMTP straight into the store, if the side has one (the reference: Dovecot LMTP).
    lmtp_port: int | None = None
    host: str = HOST
    users: tuple[str, ...] = field(default_factory=all_users)
    big_user: str = BIG_USER
    idle_user: str = IDLE_USER
    login_users: tuple[str, ...] = ()
    password: str = PASSWORD
    #: The side's root server process (Pillarbox's ``serve``, Dovecot's master): memory
    #: and CPU are read over it and its descendants. ``None``: not measurable.
    server_pid: int | None = None
    nodes: tuple[NodePorts, ...] = ()
    #: Writes messages straight into a user's INBOX files, as the side's own delivery
    #: would have stored them, for set-up only (the reference: Dovecot's Maildir, see
    #: `reference.ReferenceServers.write_maildir`); ``None``: the side has no such path.
    #: Called as ``(user, [(envelope sender, message)], first number)``.
    bulk_store: Callable[[str, Sequence[tuple[str, bytes]], int], None] | None = field(
        default=None, compare=False, repr=False
    )
    _turns: dict[str, itertools.count[int]] = field(
        default_factory=_turns, compare=False, repr=False
    )

    def port(self, kind: str) -> int | None:
        """The *kind* ("smtp", "imap", "pop3") port for the next connection: with several
        nodes, round robin per protocol (the first connection of each goes to node 1)."""
        if not self.nodes:
            port: int | None = getattr(self, f"{kind}_port")
            return port
        node = self.nodes[next(self._turns[kind]) % len(self.nodes)]
        chosen: int | None = getattr(node, f"{kind}_port")
        return chosen

    @property
    def server_pids(self) -> tuple[int, ...]:
        """Every server process of the side (each node's ``serve``), for memory and CPU."""
        pids = [n.server_pid for n in self.nodes] if self.nodes else [self.server_pid]
        return tuple(pid for pid in pids if pid is not None)


class ServerError(RuntimeError):
    """A side could not be set up, started, or stopped."""


class ServerProcess:
    """A running side. Use as a context manager; ``stop`` must be safe to call twice."""

    side = "?"

    def start(self) -> Endpoint:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        """Versions and settings worth recording in the JSON document."""
        return {}

    def __enter__(self) -> Endpoint:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def light_password_hash() -> str:
    """An argon2id hash of PASSWORD at t=1, m=1 MiB, p=1 (a millisecond to check).

    Both sides verify argon2id at the parameters stored in the hash (argon2-cffi in
    Pillarbox, libsodium in Dovecot), so the same light hash makes a log-in cheap on both.
    """
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Ports this process has handed out already: never twice in one run.
_GIVEN: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(word) for word in EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def _port_pool() -> range:
    """Where `free_port` picks: the larger stretch of 10000-65535 outside the ephemeral range."""
    low, high = _ephemeral_range()
    below = range(10000, max(10000, low))
    above = range(min(65536, high + 1), 65536)
    return below if len(below) >= len(above) else above


def free_port() -> int:
    """A TCP port on 127.0.0.1 for a server that cannot listen on port 0 (Dovecot,
    Postfix): free now, and chosen where nothing else on the machine takes ports by itself.

    A port the kernel hands out for ``bind(port 0)`` comes from the ephemeral range, which
    is also where every outgoing connection gets its local port: between this check and
    the server's own ``bind`` a client connection (ours: thousands of them in idle_fanout;
    or another process's) could take it. Outside that range only an explicit ``bind`` of
    that number can, so the pick is random over the range (another bench run picks
    elsewhere) and the bind check uses SO_REUSEADDR as the servers do (a port with
    connections in TIME_WAIT is fine for them). A side that still loses the race retries
    its start with new ports (`reference.ReferenceServers.start`); Pillarbox listens on
    port 0 and says which port it got (`pillarbox_server`), so it has no race at all."""
    pool = _port_pool()
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.choice(pool)
        if port in _GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise ServerError(f"no free port in {pool.start}-{pool.stop - 1} after 1000 tries")


def _greets(port: int, prefix: bytes) -> str | None:
    """``None`` if *port* accepts a connection and greets with *prefix*, else why not."""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as s:
            s.settimeout(5.0)
            line = b""
            while not line.endswith(b"\n") and len(line) < 1024:
                chunk = s.recv(1024)
                if not chunk:
                    break
                line += chunk
    except OSError as exc:
        return str(exc)
    return None if line.startswith(prefix) else f"unexpected greeting {line[:80]!r}"


def wait_for_greeting(
    port: int, prefix: bytes, timeout: float, alive: Callable[[], bool] | None = None
) -> None:
    """Poll *port* until it accepts a connection and sends a line starting with *prefix*.

    Raises :class:`ServerError` after *timeout* seconds, or at once if *alive* says the
    process behind the port has died.
    """
    answered = wait_for_listeners({"port": (port, prefix)}, timeout, timeout, alive)
    if not answered["port"][0]:
        raise ServerError(f"port {port} not ready after {timeout:.0f}s: {answered['port'][1]}")


def wait_for_listeners(
    listeners: dict[str, tuple[int, bytes]],
    timeout: float,
    grace: float,
    alive: Callable[[], bool] | None = None,
) -> dict[str, tuple[bool, str]]:
    """Poll every listener ``{name: (port, greeting prefix)}`` at once.

    Stops when all have greeted, *timeout* seconds after the start, or *grace* seconds after
    the first one greeted (a server that opens some listeners opens the rest together).
    Returns ``{name: (greeted, last error)}``. Raises :class:`ServerError` if *alive* says
    the process died.
    """
    deadline = time.monotonic() + timeout
    state = {name: (False, "no attempt") for name in listeners}
    while True:
        if alive is not None and not alive():
            raise ServerError("server process exited during start-up")
        for name, (port, prefix) in listeners.items():
            if state[name][0]:
                continue
            error = _greets(port, prefix)
            if error is None:
                state[name] = (True, "")
                deadline = min(deadline, time.monotonic() + grace)
            else:
                state[name] = (False, error)
        if all(ok for ok, _ in state.values()) or time.monotonic() > deadline:
            return state
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_pids(path: Path) -> list[int]:
    """Every pid in a pid file (one per line: a side of several nodes writes each)."""
    try:
        return [int(word) for word in path.read_text().split()]
    except (OSError, ValueError):
        return []


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def kill_pid(pid: int, expect: str, wait: float = 5.0) -> None:
    """SIGTERM *pid*, then SIGKILL, but only while its command line contains *expect*."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if expect not in _cmdline(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)
        if not pid_alive(pid):
            return


def make_run_dir(prefix: str) -> Path:
    """A fresh temporary directory for one side, marked with this process's pid."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return root


_DISCARDED: list[Path] = []


def discard_dir(root: Path) -> None:
    """Mark a stopped side's directory for deletion once every side is measured.

    Deleting a folder of 100,000 message files takes ~20 s of file system work; done at
    once it would run while the next side is being measured."""
    _DISCARDED.append(root)


def remove_discarded(detach: bool = True) -> None:
    """Delete the discarded directories: in a detached, idle-priority ``rm`` by default,
    so the report need not wait for it (a killed run's leftovers are reaped next time)."""
    roots, _DISCARDED[:] = list(_DISCARDED), []
    if not roots:
        return
    if detach and shutil.which("rm") and shutil.which("nice"):
        command = ["nice", "-n", "19", "rm", "-rf", "--", *map(str, roots)]
        if shutil.which("ionice"):
            command = ["ionice", "-c", "3", *command]
        try:
            subprocess.Popen(
                command,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return
        except OSError:
            pass
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


atexit.register(remove_discarded)


def reap_stale(prefix: str, pidfiles: dict[str, str], log: Log) -> None:
    """Stop servers and delete directories left by an earlier run that was killed.

    Only directories named *prefix*… in the temp dir whose owner (the bench process that
    made them) is gone are touched; each ``{relative pid file: expected command word}``
    found there is stopped if the pid still runs that command.
    """
    for root in Path(tempfile.gettempdir()).glob(prefix + "*"):
        owner = _read_pid(root / OWNER_FILE)
        if owner is None or pid_alive(owner):
            continue
        for relative, expect in pidfiles.items():
            for pid in _read_pids(root / relative):
                kill_pid(pid, expect)
        shutil.rmtree(root, ignore_errors=True)
        log(f"removed {root}, left by an earlier bench run (pid {owner}) that did not finish")
