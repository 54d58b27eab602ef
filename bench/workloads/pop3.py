"""pop3: 100 POP3 sessions each downloading 100 messages; messages per second.

Set-up tops the INBOX of each of the 100 accounts up to 100 messages of 1–30 KB by IMAP
APPEND (the same store POP3 reads). A run opens one session per account, 20 at a time,
and in each: USER, PASS, STAT, UIDL, ``RETR 1`` … ``RETR 100``, QUIT — no DELE, so runs
stay identical. The clock covers all sessions from first connect to last QUIT, so logins
(argon2id on both sides) count; ``session_retr_msgs_per_s`` isolates the download phase.

Quick mode: 10 sessions.
"""

from __future__ import annotations

import time
from typing import ClassVar

from bench.corpus import make_message
from bench.wire import Pop3Client
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


class Pop3Download(Workload):
    name: ClassVar[str] = "pop3"
    description: ClassVar[str] = "100 POP3 sessions x 100 RETR, messages/s"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sessions = min(10 if ctx.quick else 100, len(self.endpoint.users))
        self.per_session = 100
        self.concurrency = 20
        self.users = self.endpoint.users[: self.sessions]

    def params(self) -> dict[str, object]:
        return {
            "sessions": self.sessions,
            "messages_per_session": self.per_session,
            "concurrent_sessions": self.concurrency,
            "size_bytes": [1_000, 30_000],
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        return [
            Metric("msgs_per_s", "msg/s", True, "RETR'd messages over wall time"),
            Metric("mbytes_per_s", "MB/s", True, "bytes on the wire over wall time"),
            Metric(
                "session_retr_msgs_per_s",
                "msg/s",
                True,
                "RETRs per second within one session (after login), median over sessions",
            ),
            Metric("session_p99_ms", "ms", False, "one whole session, 99th percentile"),
            Metric("login_p99_ms", "ms", False, "connect+USER+PASS+STAT, 99th percentile"),
        ]

    def prepare(self) -> dict[str, object]:
        appended = top_up(
            self.endpoint,
            self.users,
            "INBOX",
            self.per_session,
            lambda user, n: make_message(
                80_000 + n, user, 1_000 + (n * 2_909 + len(user)) % 29_000, seed=8
            ),
        )
        return {"appended_to_inboxes": appended}

    def run(self, index: int) -> dict[str, float]:
        latencies = LatencyLog()

        def session(user: str) -> int:
            begin = time.perf_counter()
            client = Pop3Client(self.endpoint)
            try:
                client.login(user, self.endpoint.password)
                count = client.stat()
                latencies.add("login", time.perf_counter() - begin)
                if count < self.per_session:
                    raise WorkloadError(f"{user} has {count} < {self.per_session} messages")
                client.uidl()
                size = 0
                retr_start = time.perf_counter()
                for n in range(1, self.per_session + 1):
                    size += client.retr(n)
                latencies.add("retr", time.perf_counter() - retr_start)
                client.quit()
            except BaseException:
                client.close()
                raise
            latencies.add("session", time.perf_counter() - begin)
            return size

        start = time.perf_counter()
        sizes = parallel(self.concurrency, self.users, session)
        elapsed = time.perf_counter() - start
        return {
            "msgs_per_s": self.sessions * self.per_session / elapsed,
            "mbytes_per_s": sum(sizes) / elapsed / 1e6,
            "session_retr_msgs_per_s": self.per_session / percentile(latencies.samples["retr"], 50),
            "session_p99_ms": percentile(latencies.samples["session"], 99) * 1000,
            "login_p99_ms": percentile(latencies.samples["login"], 99) * 1000,
        }
