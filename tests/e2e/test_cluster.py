"""Two nodes on one PostgreSQL database behave as one server (issue 17, plan §3).

Pins: mail delivered over SMTP to node 2 reaches an IMAP IDLE session on node 1 within
a second (the change relay, `store.postgres.bus`); a flag set over IMAP on node 1 shows
in the webmail's event stream on node 2 (`web/live.py`); twenty APPENDs at once, half
on each node, get twenty distinct UIDs, ascending in both nodes' views (per-mailbox
counters under the mailbox row lock, plan §2); after a database outage, changes still
cross nodes (the relay reconnects and catches up).
"""

from __future__ import annotations

import asyncio
import json
import poplib
import re
import smtplib
import threading
import time
from collections.abc import Iterator

import pytest

from tests import pg
from tests.e2e.cluster import Cluster, Node, cluster
from tests.e2e.conftest import PASSWORD
from tests.e2e.mtas import wait_until
from tests.e2e.test_imap_raw import RawImap, status
from tests.web.client import WebClient
from tests.web.sse import Stream

__all__ = ["cluster"]  # the fixture

MSG = b"From: carol@other.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n"
APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


def logged_in(node: Node, user: str = "alice@example.test") -> RawImap:
    imap = RawImap(node.port("imap"), timeout=10)
    assert status(imap.login(user, PASSWORD)).startswith(b"OK")
    return imap


def idle(imap: RawImap, box: str = "INBOX") -> None:
    assert status(imap.cmd(f"SELECT {box}")).startswith(b"OK")
    imap.send(b"i1 IDLE\r\n")
    assert imap.line().startswith(b"+ ")


def append(imap: RawImap, data: bytes = MSG, box: str = "INBOX") -> int:
    lines = imap.cmd(f'APPEND "{box}" {{{len(data)}+}}\r\n'.encode() + data)
    assert status(lines).startswith(b"OK"), lines
    match = APPENDUID.search(lines[-1])
    assert match is not None, lines
    return int(match.group(2))


@pytest.fixture
def imap_sessions() -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for imap in opened:
        imap.close()


def test_smtp_on_node2_reaches_idle_on_node1_within_a_second(
    cluster: Cluster, imap_sessions: list[RawImap]
) -> None:
    idler = logged_in(cluster.node1)
    imap_sessions.append(idler)
    idle(idler)
    with smtplib.SMTP("127.0.0.1", cluster.node2.port("smtp"), "client.test", timeout=30) as smtp:
        smtp.sendmail("carol@other.test", ["alice@example.test"], MSG)
        accepted = time.monotonic()  # 250 to the final dot: committed on node 2
    idler.sock.settimeout(5)
    try:
        line = idler.line()
    except TimeoutError:
        pytest.fail("no EXISTS on node 1 within 5 s\n" + cluster.logs())
    elapsed = time.monotonic() - accepted
    assert line == b"* 1 EXISTS", line
    assert elapsed < 1.0, f"EXISTS came {elapsed:.3f}s after node 2 accepted the message"
    idler.send(b"DONE\r\n")
    assert idler.until(b"i1")[-1].startswith(b"i1 OK")


class Changes(Stream):
    """The `change` events of a node's /events stream, decoded."""

    def __init__(self, client: WebClient) -> None:
        super().__init__(client, "/events", {})

    def next_change(self, timeout: float) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(deadline - time.monotonic())
            if block.kind == "change":
                data: dict[str, object] = json.loads(block.data)
                return data


def test_a_flag_set_on_node1_reaches_the_webmail_on_node2(
    cluster: Cluster, imap_sessions: list[RawImap]
) -> None:
    inbox = asyncio.run(cluster.inbox_id("alice@example.test"))
    imap = logged_in(cluster.node1)
    imap_sessions.append(imap)
    with WebClient(cluster.node2) as web:  # type: ignore[arg-type]  # a Node has port()
        assert web.sign_in("alice@example.test").status_code == 303
        changes = Changes(web)
        try:
            assert changes.reply.status_code == 200
            uid = append(imap)
            assert changes.next_change(5) == {"kind": "added", "mailbox": inbox}
            assert status(imap.cmd("SELECT INBOX")).startswith(b"OK")
            stored = imap.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Flagged)")
            assert status(stored).startswith(b"OK"), stored
            sent = time.monotonic()
            assert changes.next_change(5) == {"kind": "flags", "mailbox": inbox}
            elapsed = time.monotonic() - sent
            assert elapsed < 1.0, f"the flag reached node 2's stream after {elapsed:.3f}s"
        finally:
            changes.close()


def test_concurrent_appends_on_both_nodes_get_unique_ascending_uids(cluster: Cluster) -> None:
    sessions = [logged_in(cluster.nodes[n % 2]) for n in range(20)]
    uids: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(sessions))
    lock = threading.Lock()

    def one(imap: RawImap, n: int) -> None:
        try:
            start.wait(timeout=30)
            uid = append(imap, MSG.replace(b"Subject: hi", b"Subject: %d" % n))
            with lock:
                uids.append(uid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(imap, n)) for n, imap in enumerate(sessions)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert len(uids) == 20 and len(set(uids)) == 20, sorted(uids)
        for node in cluster.nodes:  # both views: the same UIDs, ascending with the numbers
            imap = sessions[cluster.nodes.index(node)]
            assert status(imap.cmd("SELECT INBOX")).startswith(b"OK")
            lines = imap.cmd("FETCH 1:* (UID)")
            assert status(lines).startswith(b"OK"), lines
            seen = [int(m.group(1)) for m in map(re.compile(rb"UID (\d+)").search, lines) if m]
            assert seen == sorted(uids), (node.name, seen)
            uidnext = imap.cmd("STATUS INBOX (UIDNEXT)")
            match = re.search(rb"UIDNEXT (\d+)", b" ".join(uidnext))
            assert match is not None and int(match.group(1)) > max(uids), uidnext
    finally:
        for imap in sessions:
            imap.close()


def test_after_a_database_outage_changes_still_cross_nodes(
    cluster: Cluster, imap_sessions: list[RawImap]
) -> None:
    """PostgreSQL goes away and comes back (as a restart looks: every connection ended,
    new ones refused meanwhile). An IDLE session on node 1 lives through it, and mail
    that node 2 accepts once the database is back reaches it: node 1's relay reconnects
    and catches up whatever committed before it was listening again."""
    idler = logged_in(cluster.node1)
    imap_sessions.append(idler)
    idle(idler)
    pg.cut_off(cluster.dsn)
    try:
        port = cluster.node2.port("smtp")
        with (
            smtplib.SMTP("127.0.0.1", port, "client.test", timeout=30) as s,
            pytest.raises(smtplib.SMTPException),  # 451: no database
        ):
            s.sendmail("carol@other.test", ["alice@example.test"], MSG)
    finally:
        pg.restore(cluster.dsn)

    def delivered() -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", cluster.node2.port("smtp"), "c.test", timeout=30) as s:
                s.sendmail("carol@other.test", ["alice@example.test"], MSG)
        except smtplib.SMTPException:
            return False  # node 2's pool is still reconnecting
        return True

    wait_until(delivered, "node 2 accepts mail again after the outage", timeout=20)
    idler.sock.settimeout(10)
    try:
        line = idler.line()
    except TimeoutError:
        pytest.fail("no EXISTS on node 1 after the outage\n" + cluster.logs())
    assert line == b"* 1 EXISTS", line
    idler.send(b"DONE\r\n")
    assert idler.until(b"i1")[-1].startswith(b"i1 OK")


def test_a_pop3_session_on_node1_locks_out_one_on_node2(cluster: Cluster) -> None:
    """RFC 1939 §8: one POP3 session per maildrop, across nodes (the lease row of
    `pop_locks`); the lock ends with the first session's QUIT, and node 2 then opens it."""
    first = poplib.POP3("127.0.0.1", cluster.node1.port("pop3"), timeout=10)
    try:
        first.user("alice@example.test")
        first.pass_(PASSWORD)
        second = poplib.POP3("127.0.0.1", cluster.node2.port("pop3"), timeout=10)
        try:
            second.user("alice@example.test")
            with pytest.raises(poplib.error_proto) as refused:
                second.pass_(PASSWORD)
            assert refused.value.args[0].startswith(b"-ERR [IN-USE]"), refused.value
        finally:
            second.close()
    finally:
        first.quit()
    again = poplib.POP3("127.0.0.1", cluster.node2.port("pop3"), timeout=10)
    try:
        again.user("alice@example.test")
        assert again.pass_(PASSWORD).startswith(b"+OK")
    finally:
        again.quit()


def test_failed_logins_on_node1_slow_down_node2(cluster: Cluster) -> None:
    """The per-address throttle lives in the database (`login_failures`): guesses spread
    over the nodes gain nothing. After failures on node 1, a wrong password on node 2 is
    answered only after the delay the failures earned (auth.fail_delay, doubling)."""
    for _ in range(3):
        pop = poplib.POP3("127.0.0.1", cluster.node1.port("pop3"), timeout=30)
        pop.user("alice@example.test")
        with pytest.raises(poplib.error_proto):
            pop.pass_("wrong")
        pop.close()
    pop = poplib.POP3("127.0.0.1", cluster.node2.port("pop3"), timeout=30)
    pop.user("alice@example.test")
    started = time.monotonic()
    with pytest.raises(poplib.error_proto):
        pop.pass_("wrong again")
    waited = time.monotonic() - started
    pop.close()
    assert waited >= 1.0, f"node 2 answered a fourth failure after {waited:.2f}s"
