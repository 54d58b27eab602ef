"""large_mailbox: common IMAP operations on one folder of 100,000 messages.

Set-up (untimed, once per side) fills the INBOX of the dedicated account ``big@`` to
100,000 messages of 1–8 KB. How: ``--build fast`` (default) delivers them over SMTP to
Pillarbox and, on the reference side, writes them as the Maildir files Dovecot's LMTP
would have written (`Endpoint.bulk_store`), which Dovecot indexes at the next STATUS;
``--build deliver`` delivers over LMTP straight into Dovecot instead (Pillarbox: SMTP, it
has no LMTP listener); ``--build append`` uses IMAP APPEND on both sides. 48 connections
run in parallel; the build rate is recorded in the JSON but, the paths being different,
not compared. ``--mailbox-size N`` changes the folder size.

Why ``fast``: both folders are built at the same time on two cores, and at ~250 LMTP
deliveries a second Dovecot's build took minutes of CPU that the Pillarbox build then
lacked, for a figure nobody compares; the files take seconds and leave the same INBOX
(same messages, headers Dovecot's LMTP adds, UIDs in delivery order).

Each run then times, on fresh connections, in this order:
LOGIN+SELECT; ``UID FETCH 1:* (UID FLAGS)``; ``FETCH (ENVELOPE BODYSTRUCTURE)`` of the
newest 50; ``UID FETCH n BODY.PEEK[]`` of 50 messages spread over the folder, one command
each (PEEK so runs stay identical); ``UID SEARCH`` by subject, by sender and by body text;
``UID STORE +FLAGS (\\Seen)`` on 1,000 unseen messages (one command); ``UID MOVE`` of those
1,000 to Archive. The folder so shrinks by 1,000 per run (1 %).

Quick mode: 2,000 messages, batches of 100.
"""

from __future__ import annotations

import random
import time
from typing import ClassVar

from bench.corpus import body_token, make_message, sender_address, sizes, subject_token
from bench.procstat import wait_quiet
from bench.wire import (
    ImapClient,
    imap_login,
    imap_quote,
    parse_search,
    parse_uid_flags,
    pipelined_sender,
    uid_set,
)
from bench.workloads.base import Context, Metric, Workload, WorkloadError, parallel

#: Parallel delivery connections while building (Pillarbox's group commit likes many).
BUILD_WORKERS = 48
SEED = 77


class LargeMailbox(Workload):
    name: ClassVar[str] = "large_mailbox"
    description: ClassVar[str] = "IMAP operations on one folder of 100,000 messages"
    setup_in_parallel: ClassVar[bool] = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        quick = ctx.quick
        self.folder_size = int(ctx.options.get("mailbox_size") or (2_000 if quick else 100_000))
        self.batch = 100 if quick else 1_000
        self.min_size, self.max_size = 1_000, 8_000
        self.build = ctx.options.get("build", "fast")
        self.user = self.endpoint.big_user

    def params(self) -> dict[str, object]:
        return {
            "messages": self.folder_size,
            "size_bytes": [self.min_size, self.max_size],
            "store_and_move": self.batch,
            "build": self.build,
        }

    @classmethod
    def metrics(cls) -> list[Metric]:
        return [
            Metric("login_select_ms", "ms", False, "connect, LOGIN, SELECT INBOX"),
            Metric("uid_fetch_all_flags_ms", "ms", False, "UID FETCH 1:* (UID FLAGS)"),
            Metric("fetch_envelope_bs_50_ms", "ms", False, "ENVELOPE BODYSTRUCTURE, newest 50"),
            Metric("fetch_body_50_ms", "ms", False, "50 x UID FETCH BODY.PEEK[]"),
            Metric("search_subject_ms", "ms", False, "UID SEARCH SUBJECT"),
            Metric("search_from_ms", "ms", False, "UID SEARCH FROM"),
            Metric("search_body_ms", "ms", False, "UID SEARCH BODY"),
            Metric("store_seen_ms", "ms", False, "UID STORE +FLAGS (\\Seen) on the batch"),
            Metric("move_ms", "ms", False, "UID MOVE of the batch to Archive"),
        ]

    # -- set-up ----------------------------------------------------------------------------

    def prepare(self) -> dict[str, object]:
        client = imap_login(self.endpoint, self.user)
        try:
            client.create("Archive")
            have = client.status_messages("INBOX")
        finally:
            client.logout()
        missing = list(range(have, self.folder_size))
        method = self.build
        if method == "fast" and self.endpoint.bulk_store is not None:
            method = "files"
        elif method in ("deliver", "fast"):
            method = "lmtp" if self.endpoint.lmtp_port is not None else "smtp"
        elif method != "append":
            raise WorkloadError(f"unknown --build {self.build!r}")
        all_sizes = sizes(self.folder_size, self.min_size, self.max_size, seed=SEED)
        self.log(f"building {len(missing)} messages by {method} (have {have})")
        start = time.perf_counter()
        if missing and method == "files":
            self._store_files(missing, all_sizes)
            self._wait_until_visible(self.folder_size, timeout=900.0)
        elif missing:
            parallel(
                BUILD_WORKERS,
                [missing[i::BUILD_WORKERS] for i in range(BUILD_WORKERS)],
                lambda part: self._build_part(method, part, all_sizes),
            )
            self._wait_until_visible(self.folder_size, timeout=900.0)
        seconds = time.perf_counter() - start
        info: dict[str, object] = {"build_method": method, "built": len(missing)}
        if missing:
            info["build_seconds"] = round(seconds, 2)
            info["build_msgs_per_s"] = round(len(missing) / seconds, 1)
            self.log(f"built in {seconds:.1f}s ({len(missing) / seconds:.0f} msg/s)")
        # Timed runs start once the server has finished what the build left it to do in
        # the background (Pillarbox's text index and WAL checkpoints, Dovecot's index
        # updates), so that neither side's figures include its own set-up.
        if self.endpoint.server_pids:
            quiet = wait_quiet(self.endpoint.server_pids)
            info["settle_seconds"] = round(quiet, 1)
        return info

    def _store_files(self, missing: list[int], all_sizes: list[int]) -> None:
        """``--build fast`` on a side with `Endpoint.bulk_store`: the same messages as a
        delivery would bring, written in batches (the numbers of *missing* are
        consecutive: the folder only ever grows from the build)."""
        store = self.endpoint.bulk_store
        assert store is not None
        for at in range(0, len(missing), 1000):
            numbers = missing[at : at + 1000]
            batch = [
                (sender_address(n), make_message(n, self.user, all_sizes[n], seed=SEED))
                for n in numbers
            ]
            store(self.user, batch, numbers[0])

    def _build_part(self, method: str, numbers: list[int], all_sizes: list[int]) -> None:
        if not numbers:
            return
        if method == "append":
            client = imap_login(self.endpoint, self.user)
            try:
                for n in numbers:
                    client.append("INBOX", make_message(n, self.user, all_sizes[n], seed=SEED))
            finally:
                client.logout()
            return
        sender = pipelined_sender(self.endpoint, lmtp=method == "lmtp")
        try:
            for n in numbers:
                body = make_message(n, self.user, all_sizes[n], seed=SEED)
                sender.send(sender_address(n), self.user, body)
        finally:
            sender.close()

    def _wait_until_visible(self, count: int, timeout: float) -> None:
        client = imap_login(self.endpoint, self.user)
        deadline = time.monotonic() + timeout
        try:
            while client.status_messages("INBOX") < count:
                if time.monotonic() > deadline:
                    raise WorkloadError(f"folder not at {count} messages after {timeout:.0f}s")
                time.sleep(0.2)
        finally:
            client.logout()

    # -- one run ---------------------------------------------------------------------------

    def run(self, index: int) -> dict[str, float]:
        ms: dict[str, float] = {}

        def timed(metric: str, start: float) -> None:
            ms[metric] = (time.perf_counter() - start) * 1000

        t = time.perf_counter()
        client = ImapClient(self.endpoint)
        try:
            client.login(self.user, self.endpoint.password)
            exists = client.select("INBOX")
            timed("login_select_ms", t)
            if exists < self.batch + 50:
                raise WorkloadError(f"folder has only {exists} messages left")

            t = time.perf_counter()
            reply = client.command("UID FETCH 1:* (UID FLAGS)")
            timed("uid_fetch_all_flags_ms", t)
            flags = parse_uid_flags(reply)
            if len(flags) != exists:
                raise WorkloadError(f"UID FETCH 1:* gave {len(flags)} of {exists} messages")

            t = time.perf_counter()
            reply = client.command(f"FETCH {exists - 49}:{exists} (ENVELOPE BODYSTRUCTURE)")
            timed("fetch_envelope_bs_50_ms", t)
            if len(reply.untagged) < 50:
                raise WorkloadError(f"FETCH ENVELOPE gave {len(reply.untagged)} of 50")

            rng = random.Random(index)
            picks = rng.sample([uid for uid, _ in flags], 50)
            t = time.perf_counter()
            for uid in picks:
                client.command(f"UID FETCH {uid} BODY.PEEK[]")
            timed("fetch_body_50_ms", t)

            token = index * 7 + 3
            for metric, criterion in (
                ("search_subject_ms", f"SUBJECT {imap_quote(subject_token(token))}"),
                ("search_from_ms", f"FROM {imap_quote(sender_address(token))}"),
                ("search_body_ms", f"BODY {imap_quote(body_token(token))}"),
            ):
                t = time.perf_counter()
                reply = client.command(f"UID SEARCH {criterion}")
                timed(metric, t)
                if not parse_search(reply):
                    raise WorkloadError(f"UID SEARCH {criterion} found nothing")

            unseen = [uid for uid, f in flags if b"\\seen" not in f.lower()][: self.batch]
            if len(unseen) < self.batch:
                raise WorkloadError(f"only {len(unseen)} unseen messages left")
            targets = uid_set(unseen)
            t = time.perf_counter()
            client.command(f"UID STORE {targets} +FLAGS (\\Seen)")
            timed("store_seen_ms", t)

            t = time.perf_counter()
            client.command(f"UID MOVE {targets} Archive")
            timed("move_ms", t)
        finally:
            client.logout()
        return ms
