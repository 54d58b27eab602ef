"""Server time of the webmail's list pages on a 100,000-message folder (prints JSON).

    .venv/bin/python -m bench.web_paging [--messages N] [--runs R] [--keep DIR]

Not one of the Dovecot-comparison workloads (`python -m bench`): Dovecot has no
webmail to compare with. The folder is filled through the store in-process (each
message parsed by `message.parse` and written as its own blob, appended concurrently so
the writer's group commit batches them), about a third of the messages starting a
conversation and the rest replying to a recent one, from 300 senders. Then the real
application (`web.routes.make_app` over `app.build_services`) answers signed-in GETs
through httpx's ASGI transport: no socket, so each figure is the server's time for the
request (routing, store queries, template), median/min/max of `--runs` runs, in ms,
and the process's CPU time for it (all threads: the store's readers too), which a
machine busy with other work inflates less than the wall time. With ``--keep DIR``
holding an earlier run's data, the folder is measured again without refilling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pillarbox.app import build_services, with_ports_zero
from pillarbox.backends import open_store
from pillarbox.config import Config, DnsConfig, ServerConfig
from pillarbox.message.parse import parse
from pillarbox.services.auth import hash_password
from pillarbox.store.api import Store
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.web.routes import make_app

USER = "big@example.test"
PASSWORD = "bench-password-1"
WORDS = [
    "budget",
    "meeting",
    "lunch",
    "report",
    "invoice",
    "holiday",
    "project",
    "review",
    "draft",
    "notes",
    "plan",
    "release",
    "server",
    "backup",
    "photos",
    "family",
    "garden",
    "concert",
    "train",
    "ticket",
    "hotel",
]


def message(i: int, rng: random.Random, roots: list[int]) -> bytes:
    sender = rng.randrange(300)
    sent = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
    head = (
        f"From: Sender {sender} <sender{sender}@far{sender % 7}.test>\r\nTo: {USER}\r\n"
        f"Message-ID: <m{i}@bench.test>\r\n"
        f"Date: {sent:%a, %d %b %Y %H:%M:%S +0000}\r\n"
    )
    if roots and i % 3:
        root = rng.choice(roots[-200:])
        head += f"Subject: Re: topic {root}\r\nIn-Reply-To: <m{root}@bench.test>\r\n"
        head += f"References: <m{root}@bench.test>\r\n"
    else:
        roots.append(i)
        head += f"Subject: topic {i} {rng.choice(WORDS)}\r\n"
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 120)))
    return (head + f"\r\nmessage token{i} {body}\r\n").encode()


async def fill(store: Store, mailbox_id: int, count: int) -> float:
    rng = random.Random(14)
    roots: list[int] = []
    start = time.perf_counter()
    batch = 1000

    async def one(data: bytes, when: datetime) -> None:
        writer = store.new_blob()
        await writer.write(data)
        blob = await writer.finish()
        flags = frozenset({"\\Seen"}) if rng.random() < 0.8 else frozenset()
        await store.append(mailbox_id, blob, parse(data), flags, when)

    for first in range(0, count, batch):
        items = [(message(i, rng, roots), i) for i in range(first, min(count, first + batch))]
        base = datetime(2020, 1, 1, tzinfo=UTC)
        await asyncio.gather(*(one(d, base + timedelta(minutes=i)) for d, i in items))
        print(f"filled {min(count, first + batch)}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return time.perf_counter() - start


async def timed(client: httpx.AsyncClient, url: str, runs: int, expect: str) -> dict[str, Any]:
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = await client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        assert expect in response.text, (url, expect)
    return {
        "url": url,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
    }


async def main(root: Path, count: int, runs: int) -> dict[str, Any]:
    config = with_ports_zero(
        Config(
            server=ServerConfig(hostname="mail.example.test", data_dir=str(root / "var")),
            dns=DnsConfig(nameservers=["127.0.0.1:9"], timeout=1.0),
        )
    )
    changes = InProcessChangeBus()
    store = open_store(config, changes, server=True)
    await store.open()
    result: dict[str, Any] = {"messages": count, "runs": runs}
    try:
        services = build_services(store, config, changes)
        account = await store.get_account(USER)
        if account is None:
            await services.accounts.add_domain("example.test")
            account = await store.add_account(USER, hash_password(PASSWORD))
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        have = (await store.mailbox_status(inbox.id)).messages
        if have == 0:
            result["fill_seconds"] = round(await fill(store, inbox.id, count), 1)
        else:  # --keep DIR of an earlier run: measure that folder again
            count = result["messages"] = have
        app = make_app(services, config)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            form = (await client.get("/signin")).text
            token = re.search(r'name="signin_token" value="([^"]*)"', form)
            assert token
            signed = await client.post(
                "/signin",
                data={"signin_token": token[1], "address": USER, "password": PASSWORD, "next": "/"},
            )
            assert signed.status_code == 303, signed.status_code
            pages = -(-count // 50)
            first = (await client.get("/folder?f=INBOX")).text
            older = re.search(r'<a href="([^"]+)" rel="next"', first)
            assert older
            older_url = older[1].replace("&amp;", "&")
            figures = {
                "folder_page_1": ("/folder?f=INBOX", "Page 1 of"),
                "folder_page_1000": ("/folder?f=INBOX&page=1000", "Page "),
                "folder_last_page": (f"/folder?f=INBOX&page={pages}", f"of {pages}"),
                "folder_older_link": (older_url, "Page 2 of"),
                "folder_older_deep": ("/folder?f=INBOX&before=150", "Older"),
                "threads_page_1": ("/folder?f=INBOX&view=threads", "data-thread="),
                "threads_page_300": ("/folder?f=INBOX&view=threads&page=300", "data-thread="),
                "search_common_word": ("/search?f=INBOX&q=budget", "messages found"),
                "search_rare_token": (f"/search?f=INBOX&q=token{count // 2}", "1 message found"),
                "search_from_and_word": ("/search?f=INBOX&q=from:sender17+hotel", "found"),
                "search_subject_phrase": ('/search?f=INBOX&q="topic 4242"', "found"),
                "suggest": ("/suggest?q=sender1", "sender1"),
            }
            thread = re.search(
                r'href="([^"]*view=threads[^"]*t=\d+)',
                first_threads := (await client.get("/folder?f=INBOX&view=threads")).text,
            )
            del first_threads
            if thread:
                figures["threads_open_one"] = (thread[1].replace("&amp;", "&"), "aria-expanded")
            result["pages"] = {
                name: await timed(client, url, runs, expect)
                for name, (url, expect) in figures.items()
            }
    finally:
        await store.close()
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(main(args.keep, args.messages, args.runs))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(main(Path(tmp), args.messages, args.runs))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    cli()
