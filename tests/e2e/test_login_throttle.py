"""Password spraying from many source addresses (issue 16 item 3), over real IMAP
connections from distinct loopback addresses: attempts on the attacked account take
turns, while its owner (from an address that logged in before) and other accounts log
in without waiting for them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from pillarbox.model.cluster import LoginState
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.mtas import wait_until


def login(server: RunningServer, source: str, user: str, password: str) -> tuple[bytes, float]:
    """LOGIN over a connection from `source`; the tagged reply and when it arrived."""
    with socket.create_connection(
        ("127.0.0.1", server.port("imap")), timeout=60, source_address=(source, 0)
    ) as sock:
        f = sock.makefile("rb")
        f.readline()
        sock.sendall(f'a LOGIN "{user}" "{password}"\r\n'.encode())
        while not (line := f.readline()).startswith(b"a "):
            assert line, "connection closed"
        return line, time.monotonic()


def reserved_until(server: RunningServer, account: str) -> float:
    """The wall-clock time up to which the account's attempts have reserved their turns
    (read through the store without writing: the update returns the record unchanged)."""

    def same(state: LoginState | None) -> tuple[LoginState | None, float]:
        return state, state.next_allowed if state else 0.0

    return float(server.call(lambda: server.store.update_login_state("account:" + account, same)))


def test_spraying_one_account_is_spaced_but_its_owner_and_others_are_not(
    server_factory: Callable[..., RunningServer],
) -> None:
    srv = server_factory(
        auth={
            "fail_delay": 0.0,  # only the per-account spacing here
            "account_fail_free": 2,
            "account_fail_delay": 1.0,
            "account_fail_delay_max": 1.0,
        }
    )
    assert login(srv, "127.0.0.2", "alice@example.test", PASSWORD)[0].startswith(b"a OK")
    for n in range(2):  # the free failures, each from its own address
        assert login(srv, f"127.0.1.{n}", "alice@example.test", "wrong")[0].startswith(b"a NO")

    results: dict[str, tuple[bytes, float]] = {}

    def attempt(name: str, source: str, user: str, password: str) -> None:
        results[name] = login(srv, source, user, password)

    start, wall_start = time.monotonic(), time.time()
    threads = [
        threading.Thread(
            target=attempt, args=(f"spray{n}", f"127.0.2.{n}", "alice@example.test", "x")
        )
        for n in range(5)
    ]
    for t in threads:
        t.start()
    # A success resets the account's count, so the owner logs in once the five have
    # taken their turns (with the credential cache it would otherwise overtake them).
    wait_until(
        lambda: reserved_until(srv, "alice@example.test") >= wall_start + 5.0,
        "five spaced attempts reserved",
    )
    owner = login(srv, "127.0.0.2", "alice@example.test", PASSWORD)
    other = login(srv, "127.0.3.1", "bob@example.test", PASSWORD)
    for t in threads:
        t.join(120)
    sprays = sorted(results.values(), key=lambda r: r[1])
    assert len(sprays) == 5 and all(r[0].startswith(b"a NO") for r in sprays)
    # Five attempts one second apart: the last one started four seconds in at the earliest.
    assert sprays[-1][1] - start >= 4.0
    assert owner[0].startswith(b"a OK") and owner[1] < sprays[-1][1]
    assert other[0].startswith(b"a OK") and other[1] < sprays[-1][1]
