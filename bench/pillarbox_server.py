"""The Pillarbox side: ``pillarbox --config <toml> serve`` on loopback high ports.

Set-up writes a TOML config into a temporary directory (its own ``data_dir``), creates the
domain and the 100 accounts plus the large-mailbox account with the ``pillarbox`` CLI
(password on stdin), then starts ``serve`` as a child process in its own process group and
polls each listener for its greeting. A listener that never greets (protocol not yet
implemented) is reported as not served: the workloads needing it record an error, the
others still run. Only if no listener at all comes up does the side fail to start.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from bench.servers import (
    BIG_USER,
    DEFAULT_CONNECTION_LIMIT,
    DOMAIN,
    HOST,
    IDLE_USER,
    PASSWORD,
    USER_COUNT,
    Endpoint,
    Log,
    ServerError,
    ServerProcess,
    all_users,
    discard_dir,
    free_port,
    light_password_hash,
    make_run_dir,
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


def default_command() -> str:
    """The ``pillarbox`` script next to this interpreter (the project's venv), else PATH."""
    beside = Path(sys.executable).with_name("pillarbox")
    if beside.exists():
        return str(beside)
    return shutil.which("pillarbox") or str(beside)


def _add_users_in_process(config: Path, users: Sequence[str], light: Sequence[str]) -> bool:
    """Add *users* with Pillarbox's own AccountService, hashing in parallel, and *light*
    with the light hash straight through the store (the CLI always hashes at full cost);
    False when Pillarbox is not importable here (then the caller falls back to the CLI)."""
    try:
        from pillarbox import config as config_mod
        from pillarbox.app import open_store
        from pillarbox.services.accounts import AccountService
    except ImportError:
        return False

    async def add_all() -> None:
        store = open_store(config_mod.load(config))
        await store.open()
        try:
            accounts = AccountService(store)
            await asyncio.gather(*(accounts.add_user(user, PASSWORD) for user in users))
            for user in light:
                await store.add_account(user, light_password_hash())
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
    ) -> None:
        self._log = log
        self._user_count = user_count
        self._connection_limit = connection_limit
        self._command = command or default_command()
        self._default_command = command is None
        self._keep = keep
        self._root: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
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
        ports = {"smtp_port": free_port(), "imap_port": free_port(), "pop3_port": free_port()}
        config = root / "pillarbox.toml"
        config.write_text(
            CONFIG.format(
                data_dir=root / "data",
                host=HOST,
                max_connections=self._connection_limit,
                **ports,
            )
        )
        (root / "data").mkdir()

        users = [*all_users(self._user_count), BIG_USER]
        self._log(f"creating domain and {len(users) + 1} accounts in {root}")
        started = time.perf_counter()
        # The CLI is exercised for the domain and the first account; the rest go in
        # through the same AccountService in this process when it can import Pillarbox
        # (one interpreter start and no store open per account: ~0.8 s each otherwise).
        self._cli(config, "domain", "add", DOMAIN)
        self._cli(config, "user", "add", users[0], "--password-stdin", stdin=PASSWORD + "\n")
        if not (self._default_command and _add_users_in_process(config, users[1:], [IDLE_USER])):
            for user in [*users[1:], IDLE_USER]:
                self._cli(config, "user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
        self._log(f"accounts created in {time.perf_counter() - started:.1f}s; starting serve")

        log_file = open(root / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log_file = log_file
        self._proc = subprocess.Popen(
            [self._command, "--config", str(config), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = self._proc
        (root / SERVE_PID).write_text(f"{proc.pid}\n")

        def alive() -> bool:
            return proc.poll() is None

        listeners = {
            "smtp": (ports["smtp_port"], b"220"),
            "imap": (ports["imap_port"], b"* OK"),
            "pop3": (ports["pop3_port"], b"+OK"),
        }
        try:
            state = wait_for_listeners(listeners, START_TIMEOUT, GRACE, alive)
        except ServerError as exc:
            raise ServerError(f"pillarbox serve exited: {self._tail()}") from exc
        if not any(ok for ok, _ in state.values()):
            detail = "; ".join(f"{name}: {error}" for name, (_, error) in state.items())
            raise ServerError(f"no listener answered ({detail}): {self._tail()}")
        served = {name: listeners[name][0] if ok else None for name, (ok, _) in state.items()}
        for name, (ok, error) in state.items():
            if not ok:
                self._log(f"pillarbox does not serve {name}: {error}")
        self._served = [name for name, port in served.items() if port]
        return Endpoint(
            side=self.side,
            users=all_users(self._user_count),
            smtp_port=served["smtp"],
            imap_port=served["imap"],
            pop3_port=served["pop3"],
            server_pid=proc.pid,
        )

    def describe(self) -> dict[str, str]:
        return {"command": self._command, "served": ",".join(self._served)}

    def _tail(self, size: int = 1500) -> str:
        if self._root is None:
            return ""
        try:
            return (self._root / "serve.log").read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._log_file is not None:
            with contextlib.suppress(Exception):
                self._log_file.close()
        if self._root is not None:
            if self._keep:
                self._log(f"kept pillarbox files in {self._root}")
            else:
                discard_dir(self._root)
