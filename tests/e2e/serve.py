"""`pillarbox serve` as a real child process, and the CLI run as an operator runs it.

For tests that must kill the server (SIGKILL) and start it again on the same data: the
in-thread `RunningServer` of conftest.py cannot be killed without killing the test.
The server runs in a session (process group) of its own: with `[server] workers` > 1 it
is a master and its workers, and `kill` ends them all at once, as a machine dying does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from pillarbox import config as config_mod
from pillarbox.backends import open_store
from pillarbox.services.accounts import AccountService
from tests.e2e.conftest import password_hash

LISTENING = re.compile(r"^\s*(\w+)\s+listening on ([\d.]+):(\d+)")


def cli(config: Path, *args: str, stdin: str | None = None) -> str:
    """Run `python -m pillarbox --config CONFIG ARGS...`; its stdout (exit status 0)."""
    res = subprocess.run(
        [sys.executable, "-m", "pillarbox", "--config", str(config), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def add_accounts(config: Path, domain: str, users: Iterable[str]) -> None:
    """Add `domain` and `users` (password PASSWORD) to the store of CONFIG, in this
    process, before a server starts on it: what `pillarbox domain add` and `user add`
    would write, without a Python start-up and an argon2id hash per account (seconds
    each on a loaded machine; one hash per run here, conftest.password_hash). Those
    commands themselves are tested in tests/test_cli.py."""
    loaded = config_mod.load(config)

    async def add() -> None:
        config_mod.check_data_dir(loaded)
        store = open_store(loaded)
        await store.open()
        try:
            await AccountService(store).add_domain(domain)
            for user in users:
                await store.add_account(user, password_hash())
        finally:
            await store.close()

    asyncio.run(add())


class ServeProcess:
    """`pillarbox serve` as a child process. The constructor returns once every listener
    in `listeners` has printed its "NAME listening on HOST:PORT" start-up line; `ports`
    maps those names to their ports (`port`: the first one's). The server's log (stderr)
    goes to `log` if given (appended: a restart adds to it), else nowhere."""

    def __init__(
        self, config: Path, listeners: tuple[str, ...] = ("smtp",), log: Path | None = None
    ) -> None:
        self._log = log.open("a") if log is not None else None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pillarbox", "--config", str(config), "serve"],
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.ports: dict[str, int] = {}
        self._first = listeners[0]
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # blocks until the server says it listens
            match = LISTENING.match(line)
            if match:
                self.ports[match.group(1)] = int(match.group(3))
            if all(name in self.ports for name in listeners):
                break
        missing = [name for name in listeners if name not in self.ports]
        assert not missing, f"server did not start (no {', '.join(missing)} listener)"

    @property
    def port(self) -> int:
        return self.ports[self._first]

    def kill(self) -> None:
        """SIGKILL to the server and its workers: no shutdown code runs, as when the
        machine or the OOM killer ends it."""
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def kill_master(self) -> None:
        """SIGKILL to the `serve` process only (with workers: the master)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close()

    def stop(self) -> None:
        """SIGTERM, the orderly shutdown, and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self._close()

    def _close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
