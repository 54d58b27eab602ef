"""``python -m bench``: run the workloads against Pillarbox and, with --reference, against
Postfix + Dovecot, one side after the other on the same machine, and report.

Output: the JSON document on stdout (or in --json FILE) and the human table on stderr (or
stdout when --json is given). Progress goes to stderr. Exit status 0 when every figure was
produced, 1 when some side or workload recorded an error, 2 on bad arguments.

Every side is started first. Workloads whose set-up is long and unmeasured
(``setup_in_parallel``: the 100,000-message folder) prepare on all sides at once. Then
each side in turn gets every selected workload in registry order (``prepare`` once unless
done already, then ``--runs`` timed runs) and is stopped, so only one side is ever being
measured. Servers are always stopped: try/finally plus atexit, and SIGTERM is turned into
SystemExit so the same clean-up runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.idle_client import raise_fd_limit
from bench.pillarbox_server import DEFAULT_PG_ADMIN, PillarboxServer
from bench.reference import ReferenceServers
from bench.report import PILLARBOX, REFERENCE, compute_ratios, format_table, summarise
from bench.servers import (
    DEFAULT_CONNECTION_LIMIT,
    LOGIN_USER_COUNT,
    QUICK_LOGIN_USER_COUNT,
    QUICK_USER_COUNT,
    USER_COUNT,
    Endpoint,
    Log,
    ServerProcess,
    remove_discarded,
)
from bench.workloads import WORKLOADS, Context, Workload
from bench.workloads.idle_fanout import (
    FULL_CONNECTIONS,
    QUICK_CONNECTIONS,
    SCALE_FULL_CONNECTIONS,
    SCALE_QUICK_CONNECTIONS,
)

SCHEMA = 1


def make_logger(verbose: bool = True) -> Log:
    started = time.monotonic()

    def log(message: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    return log


def run_workload(
    cls: type[Workload], ctx: Context, runs: int, prepared: Prepared | None = None
) -> dict[str, Any]:
    """Prepare once (unless *prepared* says it was done already) and run *runs* times;
    every failure becomes the result's ``error``."""
    workload = prepared.workload if prepared is not None else cls(ctx)
    result: dict[str, Any] = {"params": workload.params(), "setup": {}, "metrics": {}}
    result["error"] = None
    began = time.perf_counter()
    try:
        _prepare_and_run(workload, runs, result, prepared)
    finally:
        workload.finish()
    result["seconds"] = round(time.perf_counter() - began, 1)
    if prepared is not None:
        result["setup_seconds"] = prepared.seconds
    return result


@dataclass
class Prepared:
    """A workload whose set-up already ran (in parallel with the other side's)."""

    workload: Workload
    setup: dict[str, object]
    error: str | None
    seconds: float


def prepare_in_parallel(jobs: list[tuple[type[Workload], Context]]) -> list[Prepared]:
    """Run the ``prepare`` of each (workload, side) at the same time, each in a thread.

    Only for set-up that nothing measures: the sides share the machine meanwhile."""

    def one(job: tuple[type[Workload], Context]) -> Prepared:
        cls, ctx = job
        workload = cls(ctx)
        began = time.perf_counter()
        try:
            setup, error = workload.prepare(), None
        except Exception as exc:
            setup, error = {}, f"set-up failed: {type(exc).__name__}: {exc}"
            workload.log(error)
        return Prepared(workload, setup, error, round(time.perf_counter() - began, 1))

    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


def _prepare_and_run(
    workload: Workload, runs: int, result: dict[str, Any], prepared: Prepared | None
) -> None:
    if prepared is not None:
        result["setup"] = prepared.setup
        if prepared.error is not None:
            result["error"] = prepared.error
            return
    else:
        try:
            result["setup"] = workload.prepare()
        except Exception as exc:
            result["error"] = f"set-up failed: {type(exc).__name__}: {exc}"
            workload.log(result["error"])
            return
    metrics = {m.name: m for m in workload.metrics()}
    values: dict[str, list[float]] = {name: [] for name in metrics}
    for index in range(runs):
        try:
            got = workload.run(index)
        except Exception as exc:
            result["error"] = f"run {index + 1}/{runs} failed: {type(exc).__name__}: {exc}"
            workload.log(result["error"])
            break
        for name, series in values.items():
            series.append(float(got.get(name, math.nan)))
        headline = next(iter(values))
        workload.log(f"run {index + 1}/{runs}: {headline} = {got.get(headline, math.nan):.2f}")
    for name, series in values.items():
        if series:
            result["metrics"][name] = {
                **summarise(series),
                "unit": metrics[name].unit,
                "higher_is_better": metrics[name].higher_is_better,
            }


@dataclass
class Side:
    """One side's server, its endpoint once started, and its part of the JSON."""

    server: ServerProcess
    endpoint: Endpoint | None = None
    result: dict[str, Any] = field(default_factory=dict)
    began: float = 0.0


def start_side(server: ServerProcess, workloads: Sequence[type[Workload]], log: Log) -> Side:
    side = Side(server, result={"error": None, "server": {}, "workloads": {}})
    side.began = time.perf_counter()
    try:
        endpoint = server.start()
    except Exception as exc:
        side.result["error"] = f"server did not start: {type(exc).__name__}: {exc}"
        log(f"[{server.side}] {side.result['error']}")
        for cls in workloads:
            side.result["workloads"][cls.name] = {"error": "server did not start", "metrics": {}}
        server.stop()
        side.result["seconds"] = round(time.perf_counter() - side.began, 1)
        return side
    side.endpoint = endpoint
    side.result["server"] = server.describe()
    side.result["endpoint"] = {
        "smtp": endpoint.smtp_port,
        "imap": endpoint.imap_port,
        "pop3": endpoint.pop3_port,
        "lmtp": endpoint.lmtp_port,
    }
    return side


def runs_on(cls: type[Workload], side: str) -> bool:
    """Whether workload *cls* runs on *side* (`Workload.sides`)."""
    return cls.sides is None or side in cls.sides


def measure_side(
    side: Side,
    workloads: Sequence[type[Workload]],
    runs: int,
    contexts: dict[str, Context],
    prepared: dict[str, Prepared],
    log: Log,
) -> None:
    """Every workload on this side in registry order, then stop its server."""
    try:
        for cls in workloads:
            if not runs_on(cls, side.server.side):
                reason = cls.skip_reason or f"not run on {side.server.side}"
                log(f"[{side.server.side}] {cls.name}: skipped ({reason})")
                side.result["workloads"][cls.name] = {
                    "params": {},
                    "setup": {},
                    "metrics": {},
                    "error": None,
                    "skipped": reason,
                }
                continue
            log(f"[{side.server.side}] {cls.name}: starting")
            side.result["workloads"][cls.name] = run_workload(
                cls, contexts[cls.name], runs, prepared.get(cls.name)
            )
    finally:
        log(f"[{side.server.side}] stopping")
        side.server.stop()
        side.result["seconds"] = round(time.perf_counter() - side.began, 1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Pillarbox, and with --reference Postfix + Dovecot, on this machine.",
    )
    parser.add_argument(
        "--reference", action="store_true", help="also run Postfix + Dovecot (Debian packages)"
    )
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes (< 3 min)")
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure (default 3)")
    parser.add_argument("--json", metavar="FILE", help="write the JSON here instead of stdout")
    parser.add_argument(
        "--no-pillarbox", action="store_true", help="skip the Pillarbox side (reference only)"
    )
    parser.add_argument("--pillarbox", metavar="CMD", help="the pillarbox command to run")
    parser.add_argument(
        "--build",
        choices=("fast", "deliver", "append"),
        default="fast",
        help="how large_mailbox fills its folder (default: fast = SMTP into Pillarbox, "
        "Maildir files for Dovecot; deliver = SMTP / LMTP; append = IMAP APPEND)",
    )
    parser.add_argument(
        "--mailbox-size",
        type=int,
        metavar="N",
        help="messages in the large_mailbox folder (default 100,000; quick 2,000)",
    )
    parser.add_argument(
        "--idle-connections",
        type=int,
        metavar="N",
        help=f"idle_fanout's IDLE connections (default {FULL_CONNECTIONS:,}; "
        f"quick {QUICK_CONNECTIONS})",
    )
    parser.add_argument(
        "--idle-scale-connections",
        type=int,
        metavar="N",
        help=f"idle_fanout_scale's IDLE connections, Pillarbox only (default "
        f"{SCALE_FULL_CONNECTIONS:,}; quick {SCALE_QUICK_CONNECTIONS:,})",
    )
    parser.add_argument(
        "--reference-passwords",
        choices=("argon2id", "plain"),
        default=None,
        help="Dovecot's passwd-file scheme for every account (default: argon2id at "
        "Pillarbox's parameters, but plain for login_heavy's accounts)",
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="Pillarbox's store (postgres: a new database on 127.0.0.1:5432, see --pg-admin)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="Pillarbox processes on one database, clients split between them (postgres)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Pillarbox's [server] workers (default: unset, so the server's default: cores)",
    )
    parser.add_argument(
        "--pg-admin",
        metavar="DSN",
        default=DEFAULT_PG_ADMIN,
        help=f"where --store postgres creates its database (default {DEFAULT_PG_ADMIN})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' temp dirs")
    parser.add_argument("-q", "--silent", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    args.workload_names = names
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.idle_connections is not None and args.idle_connections < 1:
        parser.error("--idle-connections must be at least 1")
    if args.idle_scale_connections is not None and args.idle_scale_connections < 1:
        parser.error("--idle-scale-connections must be at least 1")
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.nodes > 1 and args.store != "postgres":
        parser.error("--nodes above 1 needs --store postgres (the nodes share one database)")
    if args.no_pillarbox and not args.reference:
        parser.error("--no-pillarbox leaves nothing to run without --reference")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    log = make_logger(not args.silent)
    selected = [WORKLOADS[n] for n in args.workload_names]
    options = {"build": args.build}
    if args.mailbox_size:
        options["mailbox_size"] = str(args.mailbox_size)
    idle = args.idle_connections or (QUICK_CONNECTIONS if args.quick else FULL_CONNECTIONS)
    options["idle_connections"] = str(idle)
    scale = args.idle_scale_connections or (
        SCALE_QUICK_CONNECTIONS if args.quick else SCALE_FULL_CONNECTIONS
    )
    options["idle_scale_connections"] = str(scale)
    # idle_fanout's connections on top of what the other workloads hold; the servers are
    # children of this process and inherit its (raised) file-descriptor limit. Only the
    # sides that run idle_fanout_scale (Pillarbox) need room for its connections.
    connection_limit = max(DEFAULT_CONNECTION_LIMIT, idle + 500)
    pillarbox_limit = connection_limit
    if "idle_fanout_scale" in args.workload_names:
        pillarbox_limit = max(connection_limit, scale + 500)
    fds = raise_fd_limit()
    if pillarbox_limit + 100 > fds:
        # A one-process server holds a descriptor per connection (plus its files).
        log(
            f"warning: file-descriptor limit {fds} is below the {pillarbox_limit} "
            "connections the servers are set up for: raise the hard limit (ulimit -Hn)"
        )
    document: dict[str, Any] = {
        "tool": "pillarbox-bench",
        "schema": SCHEMA,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "runs": args.runs,
        "store": args.store,
        "nodes": args.nodes,
        "workers": args.workers,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # Before anything of ours runs: other work on the machine skews every figure.
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "workloads": [
            {
                "name": cls.name,
                "description": cls.description,
                "metrics": [
                    {
                        "name": m.name,
                        "unit": m.unit,
                        "higher_is_better": m.higher_is_better,
                        "description": m.description,
                    }
                    for m in cls.metrics()
                ],
            }
            for cls in selected
        ],
        "sides": {},
    }
    began = time.perf_counter()
    servers: list[ServerProcess] = []
    users = QUICK_USER_COUNT if args.quick else USER_COUNT
    logins = QUICK_LOGIN_USER_COUNT if args.quick else LOGIN_USER_COUNT
    document["accounts"] = users
    if not args.no_pillarbox:
        servers.append(
            PillarboxServer(
                log,
                command=args.pillarbox,
                keep=args.keep,
                user_count=users,
                connection_limit=pillarbox_limit,
                store=args.store,
                login_user_count=logins,
                nodes=args.nodes,
                pg_admin=args.pg_admin,
                workers=args.workers,
            )
        )
    if args.reference:
        servers.append(
            ReferenceServers(
                log,
                keep=args.keep,
                user_count=users,
                password_scheme=args.reference_passwords or "argon2id",
                connection_limit=connection_limit,
                login_user_count=logins,
                login_password_scheme=args.reference_passwords or "plain",
            )
        )
    try:
        sides = [start_side(server, selected, log) for server in servers]
        running = [side for side in sides if side.endpoint is not None]
        contexts = {
            id(side): {
                cls.name: Context(
                    endpoint=side.endpoint, quick=args.quick, log=log, options=options
                )
                for cls in selected
            }
            for side in running
            if side.endpoint is not None
        }
        # Heavy, unmeasured set-up (the 100,000-message folder) runs on every side at
        # once: the build rates are recorded but never compared, and overlapping them
        # takes minutes off a full run.
        jobs = [
            (side, cls)
            for side in running
            for cls in selected
            if cls.setup_in_parallel and runs_on(cls, side.server.side)
        ]
        if jobs:
            log(f"set-up in parallel: {', '.join(sorted({cls.name for _, cls in jobs}))}")
        done = prepare_in_parallel([(cls, contexts[id(side)][cls.name]) for side, cls in jobs])
        prepared: dict[int, dict[str, Prepared]] = {id(side): {} for side in running}
        for (side, cls), result in zip(jobs, done, strict=True):
            prepared[id(side)][cls.name] = result
        for side in running:
            measure_side(side, selected, args.runs, contexts[id(side)], prepared[id(side)], log)
        for side in sides:
            document["sides"][side.server.side] = side.result
    finally:
        for server in servers:
            server.stop()
        remove_discarded()
    document["ratios"] = compute_ratios(document)
    document["seconds"] = round(time.perf_counter() - began, 1)

    text = json.dumps(document, indent=2, allow_nan=False, default=str)
    table = format_table(document)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print(table)
        log(f"JSON written to {args.json}")
    else:
        print(text)
        print(table, file=sys.stderr)
    failed = any(
        side.get("error") or any(w.get("error") for w in side.get("workloads", {}).values())
        for side in document["sides"].values()
    )
    return 1 if failed else 0


__all__ = ["PILLARBOX", "REFERENCE", "main"]
