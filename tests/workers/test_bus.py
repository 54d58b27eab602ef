"""The hub bus (workers/bus.py): stamped changes of several workers reach each worker's
sessions in stamp order, local ones at once, and a stamp that never comes (a worker
killed between its stamp and its send) holds nothing back for long.

Real parts throughout: the shared counter in a memfd, frames through a socketpair, an
`InProcessChangeBus` with a subscriber that records what a session would see."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from pillarbox.model import Change, MailboxesChanged, Resync
from pillarbox.store.api import StampingBus
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.workers import wire
from pillarbox.workers.bus import HubBus

ACCOUNT = 7


def change(n: int) -> Change:
    """A distinguishable change of ACCOUNT (its mailbox id says which)."""
    return MailboxesChanged(ACCOUNT) if n < 0 else _Marked(ACCOUNT, n)


class _Marked(MailboxesChanged):
    __slots__ = ("n",)

    def __init__(self, account_id: int, n: int) -> None:
        object.__setattr__(self, "account_id", account_id)
        object.__setattr__(self, "n", n)

    def __reduce__(self) -> tuple[object, ...]:
        return (_Marked, (self.account_id, self.n))


@pytest.fixture
def counter() -> Iterator[wire.StampCounter]:
    c = wire.StampCounter.create()
    yield c
    c.close()


class Worker:
    """One worker's bus as a session sees it."""

    def __init__(self, counter: wire.StampCounter, hold: float = 5.0) -> None:
        self.sent: list[bytes] = []
        self.local = InProcessChangeBus()
        self.bus = HubBus(self.local, counter, self.sent.append, hold=hold)
        self.seen: list[object] = []
        self.sub = self.local.subscribe(ACCOUNT)
        self.sub.listen(self._record)

    def _record(self, c: Change) -> None:
        self.seen.append(c.n if isinstance(c, _Marked) else type(c).__name__)

    def forward(self, to: Worker) -> None:
        """What the master does: this worker's frames to another one."""
        for data in self.sent:
            kind, payload = data[wire.HEADER.size - 1], data[wire.HEADER.size :]
            assert kind == wire.CHANGES
            to.bus.receive(*wire.decode_changes(payload))
        self.sent.clear()


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_is_a_stamping_bus(counter: wire.StampCounter) -> None:
    assert isinstance(Worker(counter).bus, StampingBus)


async def test_local_changes_publish_at_once_and_remote_in_stamp_order(
    counter: wire.StampCounter,
) -> None:
    a, b = Worker(counter), Worker(counter)
    s1 = a.bus.stamp([change(1)])
    s2 = b.bus.stamp([change(2)])
    s3 = a.bus.stamp([change(3)])
    assert (s1, s2, s3) == (1, 2, 3)
    a.bus.publish_stamped(s1, [change(1)])
    assert a.seen == [1]  # synchronous: nothing earlier missing
    a.bus.publish_stamped(s3, [change(3)])
    assert a.seen == [1]  # 2 (b's) has not arrived: 3 waits
    b.forward(a)
    assert a.seen == [1, 2, 3]
    # b: its own 2 waits for a's 1, then a's 3 follows
    b.bus.publish_stamped(s2, [change(2)])
    assert b.seen == []
    a.forward(b)
    assert b.seen == [1, 2, 3]
    assert a.bus.skipped == b.bus.skipped == 0


async def test_a_stamp_that_never_comes_is_skipped_after_the_hold(
    counter: wire.StampCounter,
) -> None:
    a, b = Worker(counter, hold=0.1), Worker(counter, hold=0.1)
    b.bus.stamp([change(1)])  # b is killed before its frame leaves: never forwarded
    b.sent.clear()
    s2 = a.bus.stamp([change(2)])
    started = time.monotonic()
    a.bus.publish_stamped(s2, [change(2)])
    assert a.seen == []
    await wait_for(lambda: a.seen == [2])
    assert time.monotonic() - started >= 0.1
    assert a.bus.skipped == 1


async def test_a_dead_worker_report_skips_the_gap_at_once(counter: wire.StampCounter) -> None:
    a, b, c = Worker(counter), Worker(counter), Worker(counter)
    b.bus.stamp([change(1)])
    b.sent.clear()  # lost with b
    c.bus.stamp([change(2)])
    c.forward(a)
    assert a.seen == []
    a.bus.worker_died()
    assert a.seen == [2]


async def test_an_own_stamp_on_its_way_is_never_skipped(counter: wire.StampCounter) -> None:
    a, b = Worker(counter, hold=0.05), Worker(counter)
    s1 = a.bus.stamp([change(1)])  # the writer stamped it; the loop has not published yet
    b.bus.stamp([change(2)])
    b.forward(a)
    a.bus.worker_died()
    await asyncio.sleep(0.2)  # several holds pass: 1 is still awaited, 2 behind it
    assert a.seen == []
    a.bus.publish_stamped(s1, [change(1)])
    assert a.seen == [1, 2]


async def test_a_frame_after_its_stamp_was_skipped_resyncs_its_accounts(
    counter: wire.StampCounter,
) -> None:
    a, b, c = Worker(counter), Worker(counter), Worker(counter)
    b.bus.stamp([change(1)])
    late = list(b.sent)
    b.sent.clear()
    c.bus.stamp([change(2)])
    c.forward(a)
    a.bus.worker_died()
    assert a.seen == [2]
    b.sent = late
    b.forward(a)
    assert a.seen == [2, "Resync"]
    assert a.bus.resyncs == 1


async def test_a_restarted_worker_starts_at_the_counter(counter: wire.StampCounter) -> None:
    a = Worker(counter)
    for n in range(1, 4):
        a.bus.publish_stamped(a.bus.stamp([change(n)]), [change(n)])
    fresh = Worker(counter)  # knows nothing of 1..3: its sessions read them from the store
    s4 = a.bus.stamp([change(4)])
    a.forward(fresh)
    assert fresh.seen == [4]
    assert s4 == 4


async def test_frames_cross_a_socketpair_whole(counter: wire.StampCounter) -> None:
    """Large change lists in length-prefixed frames; sends from threads do not mix."""
    left, right = socket.socketpair()
    sender = wire.FrameSender(left)
    big = [Resync(n) for n in range(20_000)]

    def send_many() -> None:
        for stamp in range(1, 6):
            sender.send(wire.changes_frame(stamp, big))

    threads = [asyncio.to_thread(send_many) for _ in range(2)]
    received: list[int] = []

    def read_all() -> None:
        for _ in range(10):
            got = wire.read_frame(right)
            assert got is not None and got[0] == wire.CHANGES
            stamp, changes = wire.decode_changes(got[1])
            assert changes == big
            received.append(stamp)

    await asyncio.gather(*threads, asyncio.to_thread(read_all))
    assert sorted(received) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    sender.close()
    assert wire.read_frame(right) is None
    right.close()


async def test_changes_nobody_here_follows_keep_their_place_unread(
    counter: wire.StampCounter,
) -> None:
    """A frame of an account with no session on the receiving worker is not unpickled,
    yet its stamp is taken: the next frame of a followed account is handed on at once,
    not held as if a stamp were missing."""
    a, b = Worker(counter), Worker(counter)
    a.bus.stamp([MailboxesChanged(ACCOUNT + 1)])  # stamp 1: nobody on b follows it
    a.bus.stamp([change(2)])  # stamp 2: b's session follows ACCOUNT
    assert not b.bus.follows(ACCOUNT + 1) and b.bus.follows(ACCOUNT)
    for data in a.sent:
        b.bus.receive_frame(data[wire.HEADER.size :])
    assert b.seen == [2]
    header = wire.changes_header(a.sent[0][wire.HEADER.size :])
    assert header[:2] == (1, (ACCOUNT + 1,))
