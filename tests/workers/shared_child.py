"""A worker stand-in for the tests of `workers.shared`: attaches to the shared memory
whose descriptor it inherited, as worker `argv[2]`, then answers one command per line
on stdin with one line on stdout, so a test drives two real processes step by step.

Commands: ``admit <listener> <ip>``, ``release <listener> <ip>`` (caps of 3 in all, 2
per address, no rate), ``acquire <account> <ip> <limit>``, ``end <account> <ip>``,
``add <hex digest>``, ``has <hex digest>``.
"""

from __future__ import annotations

import sys
import time

from pillarbox.workers.counts import SharedConnectionCaps
from pillarbox.workers.shared import WorkerShared


def main() -> None:
    shared = WorkerShared.attach(sys.argv[1], int(sys.argv[2]))
    caps: dict[str, SharedConnectionCaps] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        op, *args = line.split()
        answer: object = "ok"
        if op in ("admit", "release"):
            listener, ip = args
            if listener not in caps:
                caps[listener] = shared.caps_for(
                    listener, max_connections=3, max_per_ip=2, rate_per_ip=0
                )
            if op == "admit":
                answer = caps[listener].admit(ip) or "admitted"
            else:
                caps[listener].release(ip)
        elif op == "acquire":
            answer = shared.account_sessions.try_acquire(int(args[0]), args[1], int(args[2]))
        elif op == "end":
            shared.account_sessions.release(int(args[0]), args[1])
        elif op == "add":
            shared.credentials.add(bytes.fromhex(args[0]), time.monotonic() + 60)
        elif op == "has":
            answer = shared.credentials.contains(bytes.fromhex(args[0]), time.monotonic())
        print(answer, flush=True)


if __name__ == "__main__":
    main()
