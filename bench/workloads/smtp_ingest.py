"""smtp_ingest: concurrent SMTP senders; throughput counted when mail is visible over IMAP.

20 senders share 5,000 messages of 2–50 KB (deterministic content), one recipient each,
spread evenly over the 100 accounts. Each sender keeps one SMTP connection and sends its
messages back to back. The clock starts before the first connection and stops when IMAP
``STATUS INBOX (MESSAGES)`` shows every recipient's count grown by what was sent to it,
so queued-but-undelivered mail does not count (Postfix answers 250 long before Dovecot has
the message). One logged-in IMAP session per recipient polls, opened in set-up.

Quick mode: 300 messages to the 20 quick-mode accounts.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from bench.corpus import make_message, sender_address, sizes
from bench.wire import ImapClient, send_message, smtp_connect
from bench.workloads.base import (
    Context,
    LatencyLog,
    Metric,
    Workload,
    WorkloadError,
    chunks,
    open_sessions,
    parallel,
    percentile,
    wait_for_counts,
)


class SmtpIngest(Workload):
    name: ClassVar[str] = "smtp_ingest"
    description: ClassVar[str] = "20 SMTP senders, messages/s until visible in IMAP INBOX"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        quick = self.ctx.quick
        self.senders = 20
        self.messages = 300 if quick else 5000
        self.recipients = len(self.endpoint.users)
        self.min_size, self.max_size = 2_000, 50_000
        self.visible_timeout = 120.0 if quick else 600.0
        self.sessions: dict[str, ImapClient] = {}

    def params(self) -> dict[str, object]:
        return {
            "senders": self.senders,
            "messages": self.messages,
            "recipients": self.recipients,
            "size_bytes": [self.min_size, self.max_size],
            "visible_via": "IMAP STATUS INBOX (MESSAGES) polling, one session per recipient",
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        return [
            Metric("delivered_msgs_per_s", "msg/s", True, "sent until all visible in INBOX"),
            Metric("accepted_msgs_per_s", "msg/s", True, "until the last 250 after DATA"),
            Metric("smtp_txn_p50_ms", "ms", False, "MAIL..DATA transaction, median"),
            Metric("smtp_txn_p99_ms", "ms", False, "MAIL..DATA transaction, 99th percentile"),
        ]

    def prepare(self) -> dict[str, object]:
        """One IMAP session per recipient for the visibility polls, kept for all runs."""
        self.sessions = open_sessions(self.endpoint, self.endpoint.users)
        return {}

    def finish(self) -> None:
        for client in self.sessions.values():
            client.logout()
        self.sessions = {}

    def run(self, index: int) -> dict[str, float]:
        users = self.endpoint.users
        seed = 1000 + index  # different content each run, same on both sides
        plan = [
            (n, users[n % len(users)], size)
            for n, size in enumerate(sizes(self.messages, self.min_size, self.max_size, seed=seed))
        ]
        bodies = {n: make_message(n, rcpt, size, seed=seed) for n, rcpt, size in plan}
        expected: dict[str, int] = {}
        for _, rcpt, _ in plan:
            expected[rcpt] = expected.get(rcpt, 0) + 1

        sessions = self.sessions
        targets = {u: sessions[u].status_messages() + expected[u] for u in expected}
        latencies = LatencyLog()
        accepted_at: list[float] = []
        lock = threading.Lock()

        def sender(batch: list[tuple[int, str, int]]) -> None:
            if not batch:
                return
            client = smtp_connect(self.endpoint)
            try:
                for n, rcpt, _ in batch:
                    latencies.timed("txn", send_message, client, sender_address(n), rcpt, bodies[n])
            finally:
                try:
                    client.quit()
                except Exception:
                    client.close()
            with lock:
                accepted_at.append(time.perf_counter())

        start = time.perf_counter()
        parallel(self.senders, chunks(plan, self.senders), sender)
        accepted = max(accepted_at)
        visible = wait_for_counts(self.endpoint, targets, self.visible_timeout, sessions=sessions)
        txn = latencies.samples.get("txn", [])
        if len(txn) != self.messages:
            raise WorkloadError(f"only {len(txn)} of {self.messages} transactions completed")
        return {
            "delivered_msgs_per_s": self.messages / (visible - start),
            "accepted_msgs_per_s": self.messages / (accepted - start),
            "smtp_txn_p50_ms": percentile(txn, 50) * 1000,
            "smtp_txn_p99_ms": percentile(txn, 99) * 1000,
        }
