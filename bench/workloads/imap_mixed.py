"""imap_mixed: 50 IMAP clients each looping through what a mail client does, for 30 s.

Each client logs in as its own account (u000…u049) and, until the time is up, loops:

1. ``SELECT INBOX``                                   (select)
2. ``FETCH n-19:n (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (…)])``  (fetch_headers)
3. ``UID FETCH u BODY[]`` of one of those, at random    (fetch_body)
4. ``UID STORE u ±FLAGS (\\Flagged)``, alternating      (store)
5. ``APPEND Sent (\\Seen)`` a 3–6 KB message            (append)
6. ``SELECT Sent``                                     (select)
7. ``STORE 1:* +FLAGS.SILENT (\\Deleted)``              (mark_deleted)
8. ``EXPUNGE``                                         (expunge)

so every mailbox stays the same size from loop to loop. Set-up logs the clients in (the
sessions serve every run, so argon2 logins stay out of the figures) and tops each INBOX up
to 20 messages by APPEND. Reported: operations per second per command (all clients together),
99th-percentile latency per command, and all commands per second. A client that fails
fails the run: a figure from fewer clients would not compare.

Quick mode: 20 clients (there are only 20 accounts) for 5 s.
"""

from __future__ import annotations

import random
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
    open_sessions,
    parallel,
    percentile,
)

COMMANDS = ("select", "fetch_headers", "fetch_body", "store", "append", "mark_deleted", "expunge")
HEADER_FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)]"
DELETE_ALL = "STORE 1:* +FLAGS.SILENT (\\Deleted)"
_UID = re.compile(rb"UID (\d+)", re.IGNORECASE)
INBOX_MESSAGES = 20


class ImapMixed(Workload):
    name: ClassVar[str] = "imap_mixed"
    description: ClassVar[str] = "50 IMAP clients looping select/fetch/store/append/expunge"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.clients = min(50, len(self.endpoint.users))
        self.duration = 5.0 if ctx.quick else 30.0
        self.users = self.endpoint.users[: self.clients]
        self.sessions: dict[str, ImapClient] = {}

    def params(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "seconds": self.duration,
            "inbox_messages": INBOX_MESSAGES,
            "loop": list(COMMANDS),
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        out = [
            Metric("total_ops_per_s", "op/s", True, "all commands, all clients"),
            Metric("loops_per_s", "loop/s", True, "complete loops, all clients"),
        ]
        for command in COMMANDS:
            out.append(Metric(f"{command}_ops_per_s", "op/s", True))
        for command in COMMANDS:
            out.append(Metric(f"{command}_p99_ms", "ms", False))
        return out

    def prepare(self) -> dict[str, object]:
        """Log every client in (kept for all runs), create Sent, fill INBOX to 20."""
        self.sessions = open_sessions(self.endpoint, self.users)
        appended = 0
        for user, client in self.sessions.items():
            client.create("Sent")
            for n in range(client.status_messages("INBOX"), INBOX_MESSAGES):
                client.append("INBOX", make_message(50_000 + n, user, 2_000 + 1_000 * n, seed=5))
                appended += 1
        return {"appended_to_inboxes": appended}

    def finish(self) -> None:
        for client in self.sessions.values():
            client.logout()
        self.sessions = {}

    def run(self, index: int) -> dict[str, float]:
        latencies = LatencyLog()
        sent = [
            make_message(60_000 + k, "someone@elsewhere.example.test", 3_000 + 300 * k, seed=6)
            for k in range(10)
        ]
        sessions = self.sessions
        loops: list[int] = []

        def client_loop(user: str) -> int:
            client = sessions[user]
            rng = random.Random(f"{index}-{user}")
            flagged = False
            count = 0
            while time.perf_counter() < stop:
                exists = latencies.timed("select", client.select, "INBOX")
                if exists < 1:
                    raise WorkloadError(f"{user}: INBOX is empty")
                first = max(1, exists - 19)
                reply = latencies.timed(
                    "fetch_headers",
                    client.command,
                    f"FETCH {first}:{exists} (UID FLAGS RFC822.SIZE {HEADER_FIELDS})",
                )
                uids = [int(m.group(1)) for m in map(_UID.search, reply.untagged) if m]
                if not uids:
                    raise WorkloadError(f"{user}: FETCH returned no UIDs")
                uid = rng.choice(uids)
                latencies.timed("fetch_body", client.command, f"UID FETCH {uid} BODY[]")
                sign = "-" if flagged else "+"
                flagged = not flagged
                latencies.timed("store", client.command, f"UID STORE {uid} {sign}FLAGS (\\Flagged)")
                message = sent[count % len(sent)]
                latencies.timed("append", client.append, "Sent", message, "\\Seen")
                latencies.timed("select", client.select, "Sent")
                latencies.timed(
                    "mark_deleted", client.command, "STORE 1:* +FLAGS.SILENT (\\Deleted)"
                )
                latencies.timed("expunge", client.command, "EXPUNGE")
                count += 1
            return count

        start = time.perf_counter()
        stop = start + self.duration
        loops = parallel(self.clients, self.users, client_loop)
        elapsed = time.perf_counter() - start
        metrics = {
            "total_ops_per_s": sum(len(v) for v in latencies.samples.values()) / elapsed,
            "loops_per_s": sum(loops) / elapsed,
        }
        for command in COMMANDS:
            samples = latencies.samples.get(command, [])
            metrics[f"{command}_ops_per_s"] = len(samples) / elapsed
            metrics[f"{command}_p99_ms"] = percentile(samples, 99) * 1000
        return metrics
