"""Watching one IMAP source with IDLE (RFC 2177), so its new mail is fetched in seconds.

A watcher is one connection in a thread of its own: log in (every check of a run, through
`SourceRunner.connect_imap`), SELECT the source's first folder read-only (EXAMINE, RFC
9051 §6.3.3: watching must not change the remote \\Recent or \\Seen state), and IDLE;
each EXISTS or FETCH the server sends is passed on (`Events.changed`) and the scheduler
fetches the source at once. The IDLE is ended and issued again every `RENEW` seconds,
inside the 29 minutes after which RFC 2177 §3 lets a server drop an idle client. A lost
connection is made again after a back-off that doubles from `RETRY_INITIAL` to
`RETRY_MAX` and starts over once an IDLE has been accepted.

Decision: a thread per watcher, not the event loop. The connection, TLS and every safety
check are those of the blocking client a run uses; a watcher spends its life in select(),
so a hundred of them are a hundred sleeping threads. They do not use the loop's default
executor, whose few workers are for the runs' short blocking steps.

Decision: only the first source folder is watched (one connection per source, as the
issue asks); the source's other folders are fetched by the same run that an event starts,
and otherwise at the interval.

Must not: touch the store (events go to the scheduler on its loop), or log a password.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pillarbox.fetcher.errors import FetchError
from pillarbox.fetcher.imap import ImapClient

log = logging.getLogger("pillarbox.fetcher")

RENEW = 25 * 60.0  # seconds: RFC 2177 §3, re-issue IDLE at least every 29 minutes
RETRY_INITIAL = 5.0
RETRY_MAX = 600.0


@dataclass(frozen=True, slots=True)
class Events:
    """What a watcher tells the scheduler; called from the watcher's thread."""

    ready: Callable[[], object]  # the folder is selected, IDLE follows (each (re)connection)
    changed: Callable[[], object]  # EXISTS or FETCH: fetch the source now
    ended: Callable[[str], object]  # the watcher gave up (no IDLE, a refused login): why


class IdleWatcher:
    """One source watched with IDLE (see module docstring)."""

    def __init__(
        self,
        source_id: int,
        folder: str,
        connect: Callable[[], tuple[ImapClient, str]],
        events: Events,
        *,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
    ) -> None:
        self.source_id = source_id
        self.folder = folder
        self._connect = connect
        self._events = events
        self._retry = (retry_initial, retry_max)
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._main, name=f"fetch-idle-{source_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it logs out); does not wait: see `join`."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def _main(self) -> None:
        delay = self._retry[0]
        while not self._stopping.is_set():
            try:
                if self._session():
                    delay = self._retry[0]  # an IDLE was accepted: start the back-off over
            except FetchError as exc:
                if exc.auth_failure:
                    self._events.ended(str(exc))
                    return
                log.info("fetch source %d: IDLE connection lost: %s", self.source_id, exc)
            except Exception as exc:  # OSError, imaplib's errors, a server we cannot read
                log.info("fetch source %d: IDLE connection lost: %s", self.source_id, exc)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._retry[1])

    def _session(self) -> bool:
        """One connection; True if it got as far as IDLE. Returns when stopped."""
        client, _address = self._connect()
        accepted = False
        try:
            if "IDLE" not in client.capabilities:
                self._events.ended("the server no longer offers IDLE")
                self._stopping.set()
                return False
            client.select(self.folder, readonly=True)
            # Mail that came before this SELECT is fetched by the run this starts; what
            # comes after it the server reports once IDLE begins (RFC 9051 §7: pending
            # updates go out with the next command's responses).
            self._events.ready()
            accepted = True
            while not self._stopping.is_set():
                if not client.idle(RENEW, self._wake_r, self._events.changed):
                    break
            client.logout()
        finally:
            client.close()
        return accepted
