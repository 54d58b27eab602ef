"""login_heavy: clients that open a new connection and log in for every check of their mail.

Issue 18's "login-heavy mix": N clients (full 50, quick 10), each with an account of its
own (``login000``…, ``Endpoint.login_users``), loop for the run's length over cycles of

1. connect and read the greeting
2. ``LOGIN``                                                  (timed: login_p50/p99)
3. ``SELECT INBOX``
4. ``FETCH n-9:n (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (…)])`` — the last 10 by
   sequence number, so the cost stays bounded while the mailbox grows
5. ``UID STORE u +FLAGS (\\Seen)`` on the newest of those
6. ``APPEND INBOX`` a ~1 KB message (the mailbox grows by one per cycle)
7. ``LOGOUT`` (sent, connection closed)

so six commands per cycle, one of them a login. Set-up tops each INBOX up to 10 messages
(through logins, which warms any credentials cache the side has, as a client's earlier
connections would). Reported: cycles, commands and logins per second (all clients
together), LOGIN latency p50/p99 and whole-cycle p50.

Passwords: on the reference side these accounts have plain-text passwords by default
(``{PLAIN}``, Dovecot's fastest case, ``--reference-passwords`` to change), while Pillarbox
keeps argon2id (64 MiB, t=3, p=4): the goal of issue 18 is to match Dovecot's fastest
case without weakening what is stored. The table says so in a note.
"""

from __future__ import annotations

import re
import time
from typing import ClassVar

from bench.corpus import make_message
from bench.wire import ImapClient
from bench.workloads.base import (
    Context,
    LatencyLog,
    Metric,
    Workload,
    WorkloadError,
    parallel,
    percentile,
    top_up,
)

FULL_CLIENTS = 50
QUICK_CLIENTS = 10
FETCH_LAST = 10
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)]"
COMMANDS_PER_CYCLE = 6  # LOGIN SELECT FETCH STORE APPEND LOGOUT
_UID = re.compile(rb"UID (\d+)", re.IGNORECASE)


class LoginHeavy(Workload):
    name: ClassVar[str] = "login_heavy"
    description: ClassVar[str] = (
        "N clients, a new connection per cycle: LOGIN SELECT FETCH STORE APPEND LOGOUT"
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        wanted = QUICK_CLIENTS if ctx.quick else FULL_CLIENTS
        self.users = self.endpoint.login_users[:wanted]
        self.clients = len(self.users)
        self.duration = 5.0 if ctx.quick else 30.0

    def params(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "seconds": self.duration,
            "fetch_last": FETCH_LAST,
            "cycle": ["connect", "LOGIN", "SELECT", "FETCH", "STORE", "APPEND", "LOGOUT"],
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        return [
            Metric("cycles_per_s", "cycle/s", True, "connect … LOGOUT, all clients"),
            Metric("commands_per_s", "cmd/s", True, "six commands per cycle"),
            Metric("logins_per_s", "login/s", True),
            Metric("login_p50_ms", "ms", False, "LOGIN sent → tagged OK"),
            Metric("login_p99_ms", "ms", False),
            Metric("cycle_p50_ms", "ms", False, "connect → LOGOUT sent"),
        ]

    def prepare(self) -> dict[str, object]:
        if not self.users:
            raise WorkloadError("this side has no login_heavy accounts")

        def message(user: str, n: int) -> bytes:
            return make_message(70_000 + n, user, 1_000 + 100 * n, seed=7)

        appended = top_up(self.endpoint, self.users, "INBOX", FETCH_LAST, message)
        return {"appended_to_inboxes": appended}

    def run(self, index: int) -> dict[str, float]:
        latencies = LatencyLog()
        endpoint = self.endpoint
        small = [
            make_message(80_000 + k, "someone@elsewhere.example.test", 800 + 50 * k, seed=8)
            for k in range(10)
        ]

        def client_loop(user: str) -> int:
            count = 0
            while time.perf_counter() < stop:
                began = time.perf_counter()
                client = ImapClient(endpoint)
                try:
                    latencies.timed("login", client.login, user, endpoint.password)
                    exists = client.select("INBOX")
                    if exists < 1:
                        raise WorkloadError(f"{user}: INBOX is empty")
                    first = max(1, exists - FETCH_LAST + 1)
                    reply = client.command(
                        f"FETCH {first}:{exists} (UID FLAGS RFC822.SIZE {HEADER_FIELDS})"
                    )
                    uids = [int(m.group(1)) for m in map(_UID.search, reply.untagged) if m]
                    if not uids:
                        raise WorkloadError(f"{user}: FETCH returned no UIDs")
                    client.command(f"UID STORE {max(uids)} +FLAGS (\\Seen)")
                    client.append("INBOX", small[count % len(small)])
                finally:
                    client.logout()
                latencies.add("cycle", time.perf_counter() - began)
                count += 1
            return count

        start = time.perf_counter()
        stop = start + self.duration
        cycles = sum(parallel(self.clients, self.users, client_loop))
        elapsed = time.perf_counter() - start
        logins = latencies.samples.get("login", [])
        return {
            "cycles_per_s": cycles / elapsed,
            "commands_per_s": cycles * COMMANDS_PER_CYCLE / elapsed,
            "logins_per_s": len(logins) / elapsed,
            "login_p50_ms": percentile(logins, 50) * 1000,
            "login_p99_ms": percentile(logins, 99) * 1000,
            "cycle_p50_ms": percentile(latencies.samples.get("cycle", []), 50) * 1000,
        }
