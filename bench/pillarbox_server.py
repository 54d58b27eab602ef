"""The Pillarbox side: ``pillarbox --config <toml> serve`` on loopback high ports.

Set-up writes a TOML config into a temporary directory (its own ``data_dir``), creates the
domain and the 100 accounts plus the large-mailbox account with the ``pillarbox`` CLI
(password on stdin), then starts ``serve`` as a child process in its own process group and
polls each listener for its greeting. A listener that never greets (protocol not yet
implemented) is reported as not served: the workloads needing it record an error, the
others still run. Only if no listener at all comes up does the side fail to start.

With ``--store postgres`` the side gets a database of its own on the local PostgreSQL
(``CREATE DATABASE pbbench_<pid>_<hex>`` through ``--pg-admin``, dropped when the side
stops; one left by a killed run is dropped by the next), migrated with
``pillarbox migrate``, and the config says ``[server] store = "postgres"`` with
``[store] dsn``. With ``--nodes N`` (PostgreSQL only) N ``serve`` processes share that
database, each with its own ports, data directory and ``[server] node_id``
(bench1, bench2, ...); the endpoint lists them all and the workloads' connections
alternate between them (`servers.Endpoint.port`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from bench.servers import (
    BIG_USER,
    DEFAULT_CONNECTION_LIMIT,
    DOMAIN,
    HOST,
    IDLE_USER,
    LOGIN_USER_COUNT,
    PASSWORD,
    USER_COUNT,
    Endpoint,
    Log,
    NodePorts,
    ServerError,
    ServerProcess,
    all_users,
    discard_dir,
    light_password_hash,
    login_users,
    make_run_dir,
    pid_alive,
    reap_stale,
    wait_for_listeners,
)

START_TIMEOUT = 60.0
#: Once one listener answers, the others get this long to answer too.
GRACE = 10.0
CLI_TIMEOUT = 120.0
#: SIGTERM, then SIGKILL after this long: the data directory is thrown away anyway.
STOP_TIMEOUT = 5.0
DIR_PREFIX = "pbbench-"
SERVE_PID = "serve.pid"

#: Where ``--store postgres`` creates its database (trust auth on loopback, as on CI).
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "pbbench_"
_DB_NAME = re.compile(r"^pbbench_(\d+)_[0-9a-f]+$")

#: serve's start-up line for each listener (tests/e2e/serve.py reads the same).
LISTENING = re.compile(r"^\s*(\w+)\s+listening on [\d.]+:(\d+)", re.MULTILINE)

CONFIG = """\
# Written by bench/pillarbox_server.py for one benchmark run.
[server]
hostname = "pillarbox.bench.invalid"
data_dir = "{data_dir}"

[listen]
smtp = "{host}:{smtp_port}"
submission = ""
submissions = ""
imap = "{host}:{imap_port}"
imaps = ""
pop3 = "{host}:{pop3_port}"
pop3s = ""
http = ""

[limits]
# One loopback client stands in for many: no per-IP caps (Dovecot gets the same), and
# room for idle_fanout's connections (--idle-connections) on top of the other workloads'.
max_connections = {max_connections}
max_connections_per_ip = {max_connections}
connection_rate_per_ip = 0
max_unauthenticated = {max_connections}
max_connections_per_account = {max_connections}
"""


def with_store(config: str, dsn: str, node_id: str) -> str:
    """*config* (a formatted `CONFIG`) moved onto PostgreSQL: ``store`` and ``node_id``
    join ``[server]`` right after its ``data_dir`` line, and ``[store] dsn`` goes last."""
    lines = config.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("data_dir = "))
    lines.insert(at + 1, f'store = "postgres"\nnode_id = "{node_id}"\n')
    return "".join(lines) + f'\n[store]\ndsn = "{dsn}"\n'


def with_workers(config: str, workers: int) -> str:
    """*config* (a formatted `CONFIG`) with ``[server] workers`` after its ``data_dir``."""
    lines = config.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("data_dir = "))
    lines.insert(at + 1, f"workers = {workers}\n")
    return "".join(lines)


def _dsn_for(admin: str, database: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


async def _admin(admin: str, statements: Sequence[str]) -> list[str]:
    """Run *statements* on the admin database; returns the names of the bench databases
    there (before the statements ran)."""
    import asyncpg

    conn = await asyncpg.connect(admin, timeout=10)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'pbbench\\_%'")
        for statement in statements:
            await conn.execute(statement)
        return [str(r["datname"]) for r in rows]
    finally:
        await conn.close()


def create_database(admin: str, log: Log) -> str:
    """A new, empty database for this run (name: ``pbbench_<our pid>_<hex>``); bench
    databases of runs whose process is gone are dropped first. Returns its name."""
    name = f"{DB_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    try:
        existing = asyncio.run(_admin(admin, []))
        stale = [
            db
            for db in existing
            if (m := _DB_NAME.match(db)) is not None and not pid_alive(int(m.group(1)))
        ]
        drops = [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in stale]
        asyncio.run(_admin(admin, [*drops, f'CREATE DATABASE "{name}"']))
    except Exception as exc:
        raise ServerError(f"cannot create a database through {admin}: {exc}") from exc
    for db in stale:
        log(f"dropped database {db}, left by an earlier bench run that did not finish")
    return name


def drop_database(admin: str, name: str) -> None:
    asyncio.run(_admin(admin, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']))


def default_command() -> str:
    """The ``pillarbox`` script next to this interpreter (the project's venv), else PATH."""
    beside = Path(sys.executable).with_name("pillarbox")
    if beside.exists():
        return str(beside)
    return shutil.which("pillarbox") or str(beside)


def _add_users_in_process(
    config: Path, users: Sequence[str], light: Sequence[str], same: Sequence[str] = ()
) -> bool:
    """Add *users* and *same* (login_heavy's accounts) straight through the store with one
    hash of PASSWORD made by Pillarbox's own `hash_password` (its parameters: every
    log-in still costs a full argon2id check), and *light* with the light hash (the CLI
    always hashes at full cost); False when Pillarbox is not importable here (then the
    caller falls back to the CLI).

    One hash for all: hashing each account (a fresh salt each, ~0.3 s of both cores) took
    ~37 s of a full run's set-up for nothing any figure depends on; the reference side's
    passwd-file shares one hash the same way."""
    try:
        from pillarbox import config as config_mod
        from pillarbox.backends import open_store
        from pillarbox.services.auth import hash_password
    except ImportError:
        return False

    async def add_all() -> None:
        store = open_store(config_mod.load(config))
        await store.open()
        try:
            secret = hash_password(PASSWORD)
            for user in users:
                await store.add_account(user, secret)
            for user in light:
                await store.add_account(user, light_password_hash())
            for user in same:
                await store.add_account(user, secret)
        finally:
            await store.close()

    asyncio.run(add_all())
    return True


class PillarboxServer(ServerProcess):
    side = "pillarbox"

    def __init__(
        self,
        log: Log,
        command: str | None = None,
        keep: bool = False,
        user_count: int = USER_COUNT,
        connection_limit: int = DEFAULT_CONNECTION_LIMIT,
        store: str = "sqlite",
        login_user_count: int = LOGIN_USER_COUNT,
        nodes: int = 1,
        pg_admin: str = DEFAULT_PG_ADMIN,
        workers: int | None = None,
    ) -> None:
        """`workers`: `[server] workers` of each node; None leaves it out (the server's
        default, one per core)."""
        if nodes > 1 and store != "postgres":
            raise ValueError("several nodes need the postgres store (one shared database)")
        self._store = store
        self._nodes = nodes
        self._workers = workers
        self._pg_admin = pg_admin
        self._database: str | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._log_files: list[IO[bytes]] = []
        self._log = log
        self._user_count = user_count
        self._login_users = login_users(login_user_count)
        self._connection_limit = connection_limit
        self._command = command or default_command()
        self._default_command = command is None
        self._keep = keep
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._served: list[str] = []

    def _cli(self, config: Path, *args: str, stdin: str | None = None) -> None:
        cmd = [self._command, "--config", str(config), *args]
        try:
            result = subprocess.run(
                cmd,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=CLI_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerError(f"{' '.join(args[:2])}: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[-600:]
            raise ServerError(f"`pillarbox {' '.join(args)}` exited {result.returncode}: {detail}")

    def start(self) -> Endpoint:
        if not os.path.exists(self._command):
            raise ServerError(f"no pillarbox command at {self._command}")
        atexit.register(self.stop)
        reap_stale(DIR_PREFIX, {SERVE_PID: "pillarbox"}, self._log)
        root = make_run_dir(DIR_PREFIX)
        self._root = root
        dsn = None
        if self._store == "postgres":
            self._database = create_database(self._pg_admin, self._log)
            dsn = _dsn_for(self._pg_admin, self._database)
            self._log(f"database {self._database} for {self._nodes} node(s)")
        configs: list[Path] = []
        for index in range(self._nodes):
            # Port 0: the kernel picks when serve binds, and serve prints what it got
            # (`_listening`), so no port picked free here can be taken in between.
            ports = {"smtp_port": 0, "imap_port": 0, "pop3_port": 0}
            # One node keeps the layout of a plain run; several get a directory each.
            home = root if self._nodes == 1 else root / f"node{index + 1}"
            home.mkdir(exist_ok=True)
            config = home / "pillarbox.toml"
            text = CONFIG.format(
                data_dir=home / "data",
                host=HOST,
                max_connections=self._connection_limit,
                **ports,
            )
            if self._workers is not None:
                text = with_workers(text, self._workers)
            if dsn is not None:
                text = with_store(text, dsn, f"bench{index + 1}")
            config.write_text(text)
            (home / "data").mkdir()
            configs.append(config)
        config = configs[0]
        if dsn is not None:
            self._cli(config, "migrate")  # the schema once, before any node starts

        users = [*all_users(self._user_count), BIG_USER]
        self._log(f"creating domain and {len(users) + len(self._login_users) + 1} accounts")
        started = time.perf_counter()
        # The CLI is exercised for the domain and the first account; the rest go in
        # through the same AccountService in this process when it can import Pillarbox
        # (one interpreter start and no store open per account: ~0.8 s each otherwise).
        self._cli(config, "domain", "add", DOMAIN)
        self._cli(config, "user", "add", users[0], "--password-stdin", stdin=PASSWORD + "\n")
        logins = self._login_users
        if not (
            self._default_command and _add_users_in_process(config, users[1:], [IDLE_USER], logins)
        ):
            for user in [*users[1:], IDLE_USER, *logins]:
                self._cli(config, "user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        self._log(f"accounts created in {time.perf_counter() - started:.1f}s; starting serve")

        for config in configs:
            log_file = open(config.parent / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
            self._log_files.append(log_file)
            self._procs.append(
                subprocess.Popen(
                    [self._command, "--config", str(config), "serve"],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self._proc = self._procs[0]
        (root / SERVE_PID).write_text("".join(f"{p.pid}\n" for p in self._procs))
        nodes = [
            self._wait_node(proc, self._listening(proc, config.parent), config.parent)
            for proc, config in zip(self._procs, configs, strict=True)
        ]
        first = nodes[0]
        return Endpoint(
            side=self.side,
            users=all_users(self._user_count),
            login_users=self._login_users,
            smtp_port=first.smtp_port,
            imap_port=first.imap_port,
            pop3_port=first.pop3_port,
            server_pid=first.server_pid,
            nodes=tuple(nodes) if len(nodes) > 1 else (),
        )

    def _listening(self, proc: subprocess.Popen[bytes], home: Path) -> dict[str, int]:
        """The ports one node's serve bound, from its "NAME listening on HOST:PORT" start-up
        lines in serve.log (printed once every listener is up); a protocol with no such line
        gets port 0, which `_wait_node` then reports as not served."""
        deadline = time.monotonic() + START_TIMEOUT
        found: dict[str, int] = {}
        while True:
            try:
                text = (home / "serve.log").read_text(errors="replace")
            except OSError:
                text = ""
            found = {m.group(1): int(m.group(2)) for m in LISTENING.finditer(text)}
            if all(name in found for name in ("smtp", "imap", "pop3")):
                break
            if proc.poll() is not None:
                raise ServerError(f"pillarbox serve exited: {self._tail(home)}")
            if found and "outbound" in text:
                break  # the start-up lines are complete: the missing ones are not served
            if time.monotonic() > deadline:
                raise ServerError(f"pillarbox serve printed no listening lines: {self._tail(home)}")
            time.sleep(0.05)
        return {f"{name}_port": found.get(name, 0) for name in ("smtp", "imap", "pop3")}

    def _wait_node(
        self, proc: subprocess.Popen[bytes], ports: dict[str, int], home: Path
    ) -> NodePorts:
        """Wait for one node's listeners; its ports, None for one that never greeted."""

        def alive() -> bool:
            return proc.poll() is None

        greetings = {"smtp": b"220", "imap": b"* OK", "pop3": b"+OK"}
        listeners = {
            name: (ports[f"{name}_port"], prefix)
            for name, prefix in greetings.items()
            if ports[f"{name}_port"]
        }
        if not listeners:
            raise ServerError(f"pillarbox serve listens on nothing: {self._tail(home)}")
        try:
            state = wait_for_listeners(listeners, START_TIMEOUT, GRACE, alive)
        except ServerError as exc:
            raise ServerError(f"pillarbox serve exited: {self._tail(home)}") from exc
        if not any(ok for ok, _ in state.values()):
            detail = "; ".join(f"{name}: {error}" for name, (_, error) in state.items())
            raise ServerError(f"no listener answered ({detail}): {self._tail(home)}")
        served: dict[str, int | None] = dict.fromkeys(greetings)
        for name, (ok, error) in state.items():
            if ok:
                served[name] = listeners[name][0]
            else:
                self._log(f"pillarbox does not serve {name}: {error}")
        for name in greetings.keys() - listeners.keys():
            self._log(f"pillarbox does not serve {name}: no listening line")
        self._served = [name for name, port in served.items() if port]
        return NodePorts(served["smtp"], served["imap"], served["pop3"], proc.pid)

    def describe(self) -> dict[str, str]:
        return {
            "command": self._command,
            "served": ",".join(self._served),
            "store": self._store,
            "nodes": str(self._nodes),
        }

    def _tail(self, home: Path | None = None, size: int = 1500) -> str:
        home = home or self._root
        if home is None:
            return ""
        try:
            return (home / "serve.log").read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for log_file in self._log_files:
            with contextlib.suppress(Exception):
                log_file.close()
        if self._database is not None:
            if self._keep:
                self._log(f"kept database {self._database}")
            else:
                try:
                    drop_database(self._pg_admin, self._database)
                except Exception as exc:
                    self._log(f"could not drop database {self._database}: {exc}")
        if self._root is not None:
            if self._keep:
                self._log(f"kept pillarbox files in {self._root}")
            else:
                discard_dir(self._root)
