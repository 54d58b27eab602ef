"""The per-account login throttle with a fake clock: spacing after the free failures,
growth and cap, trusted addresses, reset by a success, forgetting after the window."""

from __future__ import annotations

from pillarbox.services.account_throttle import AccountThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_attempts_from_many_addresses_take_turns_after_the_free_failures() -> None:
    clock = Clock()
    t = AccountThrottle(delay=1.0, cap=4.0, free=3, window=900.0, clock=clock)
    for n in range(3):
        assert t.wait_before("alice@x.test", f"198.51.100.{n}") == 0.0
        t.failed("alice@x.test")
    # Five attempts at once from five new addresses: spaced one second apart.
    waits = [t.wait_before("alice@x.test", f"203.0.113.{n}") for n in range(5)]
    assert waits == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert t.wait_before("bob@x.test", "203.0.113.1") == 0.0  # other accounts unaffected
    for _ in range(10):
        t.failed("alice@x.test")
    clock.now += 100
    assert t.wait_before("alice@x.test", "203.0.113.9") == 0.0
    assert t.wait_before("alice@x.test", "203.0.113.10") == 4.0  # capped


def test_the_owner_s_address_is_not_held_back_and_a_success_resets() -> None:
    clock = Clock()
    t = AccountThrottle(delay=1.0, cap=60.0, free=1, clock=clock)
    t.succeeded("alice@x.test", "192.0.2.7")
    for _ in range(8):
        t.failed("alice@x.test")
    assert t.wait_before("alice@x.test", "192.0.2.7") == 0.0
    assert t.wait_before("alice@x.test", "203.0.113.1") == 0.0
    assert t.wait_before("alice@x.test", "203.0.113.2") == 60.0
    t.succeeded("alice@x.test", "192.0.2.7")
    clock.now += 1
    assert t.wait_before("alice@x.test", "203.0.113.3") == 0.0


def test_failures_are_forgotten_after_the_window_and_trust_expires() -> None:
    clock = Clock()
    t = AccountThrottle(delay=1.0, free=1, window=900.0, trusted_for=86400.0, clock=clock)
    t.succeeded("alice@x.test", "192.0.2.7")
    t.failed("alice@x.test")
    t.failed("alice@x.test")
    clock.now += 901
    assert t.wait_before("alice@x.test", "203.0.113.1") == 0.0
    assert t.wait_before("alice@x.test", "203.0.113.2") == 0.0
    clock.now += 86400
    t.failed("alice@x.test")
    t.wait_before("alice@x.test", "203.0.113.3")
    assert t.wait_before("alice@x.test", "192.0.2.7") > 0.0  # no longer trusted


def test_a_repeated_success_from_the_newest_trusted_address_changes_nothing() -> None:
    """A client logging in for every mail check must not rewrite the shared record each
    time: an equal record lets the store skip the write (TRUST_REFRESH)."""
    t = AccountThrottle(trusted_for=30 * 86400.0)
    first = t.succeeded_step(None, "192.0.2.7", 1000.0)
    assert t.succeeded_step(first, "192.0.2.7", 1000.0 + 3599.0) == first
    refreshed = t.succeeded_step(first, "192.0.2.7", 1000.0 + 3600.0)
    assert refreshed.trusted == (("192.0.2.7", 4600.0),)
    other = t.succeeded_step(first, "192.0.2.8", 1001.0)  # another address: recorded
    assert [ip for ip, _ in other.trusted] == ["192.0.2.7", "192.0.2.8"]
    failed = t.failed_step(first, 1002.0)
    assert t.succeeded_step(failed, "192.0.2.7", 1003.0).failures == 0  # a reset is written
