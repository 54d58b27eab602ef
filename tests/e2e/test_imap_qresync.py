"""QRESYNC (RFC 7162 §3.2) on the wire: SELECT ... (QRESYNC ...) answers exactly what
changed (VANISHED (EARLIER) then FETCH (UID FLAGS MODSEQ), before the tagged OK), also
after a server restart; UID FETCH (CHANGEDSINCE m VANISHED); VANISHED instead of EXPUNGE
once QRESYNC is on (EXPUNGE, MOVE, other sessions in IDLE or polling with NOOP); [CLOSED];
HIGHESTMODSEQ in the tagged OK of UID EXPUNGE but never of CLOSE;
MODSEQ never reused after an expunge and a restart."""

from __future__ import annotations

import poplib
import random
import re
import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer, make_config, provision
from tests.e2e.modseq_client import (
    append,
    code_number,
    fetches,
    logged_in,
    ok,
    read_until,
    state,
    untagged,
    vanished,
)
from tests.e2e.test_imap_raw import RawImap

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py


@pytest.fixture
def clients() -> Iterator[list[RawImap]]:
    opened: list[RawImap] = []
    yield opened
    for c in opened:
        c.close()


def _client(server: RunningServer, clients: list[RawImap], *, qresync: bool = True) -> RawImap:
    c = logged_in(server.port("imap"))
    clients.append(c)
    if qresync:
        assert untagged(ok(c.cmd("ENABLE QRESYNC"))) == [b"* ENABLED QRESYNC"]
    return c


def _saved(lines: list[bytes]) -> tuple[int, int]:
    """(UIDVALIDITY, HIGHESTMODSEQ) a client keeps from a SELECT."""
    return code_number(lines, "UIDVALIDITY"), code_number(lines, "HIGHESTMODSEQ")


def test_qresync_needs_enable(server: RunningServer, clients: list[RawImap]) -> None:
    """SELECT (QRESYNC ...) and the VANISHED modifier without ENABLE QRESYNC are BAD
    (RFC 7162 §3.2.5, §3.2.6); the mailbox stays as it was."""
    a = _client(server, clients, qresync=False)
    append(a)
    lines = a.cmd("SELECT INBOX (QRESYNC (1 1))")
    assert lines[-1].split()[1] == b"BAD" and len(lines) == 1
    ok(a.cmd("SELECT INBOX"))
    lines = a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    assert lines[-1].split()[1] == b"BAD" and len(lines) == 1


def test_select_qresync_reports_what_changed(server: RunningServer, clients: list[RawImap]) -> None:
    """RFC 7162 §3.2.5: after (uidvalidity, modseq) the server sends VANISHED (EARLIER)
    with exactly the UIDs expunged since (not those expunged before), then one FETCH (UID
    FLAGS MODSEQ) per message changed or added since, before the tagged OK; known-uids
    limits both; a seq-match is accepted; a wrong UIDVALIDITY gives neither; a SELECT
    that replaces a selected mailbox starts with OK [CLOSED] (§3.2.11)."""
    port = server.port("imap")
    a = _client(server, clients)
    b = _client(server, clients, qresync=False)
    for _ in range(10):
        append(b)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 2 +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd("UID EXPUNGE 2"))  # before the client's state: never reported
    uidvalidity, modseq = _saved(ok(a.cmd("SELECT INBOX")))
    ok(a.cmd("LOGOUT"))
    ok(b.cmd("UID STORE 3 +FLAGS.SILENT (\\Seen)"))
    ok(b.cmd("UID STORE 5 +FLAGS.SILENT (\\Answered $Work)"))
    ok(b.cmd("UID STORE 4,6 +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd("UID EXPUNGE 4,6"))
    new = append(b)
    truth = state(port)
    seqs = {uid: i + 1 for i, uid in enumerate(sorted(truth))}

    def line(uid: int) -> bytes:
        flags = b" ".join(sorted(truth[uid][0]))
        return b"* %d FETCH (FLAGS (%s) UID %d MODSEQ (%d))" % (
            seqs[uid],
            flags,
            uid,
            truth[uid][1],
        )

    c = _client(server, clients)
    ok(c.cmd("CREATE Other"))
    ok(c.cmd("SELECT Other"))
    # EXAMINE: read-only, so no \\Recent is taken (RFC 3501 §6.3.2) and flags compare.
    lines = ok(c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq}))"))
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
    high = max(m for _f, m in truth.values())
    assert b"* OK [HIGHESTMODSEQ %d] Highest" % high in lines
    # VANISHED (EARLIER) first, then the changes in sequence order, then the tagged OK
    # ($Work is announced in FLAGS before the FETCH that shows it, RFC 9051 §7.3.5).
    news = [x for x in untagged(lines) if b"VANISHED" in x or b"FETCH" in x]
    assert news[0] == b"* VANISHED (EARLIER) 4,6"
    assert [fetches([x]) for x in news[1:]] == [fetches([line(u)]) for u in (3, 5, new)]
    assert lines.index(news[0]) > lines.index(b"* OK [HIGHESTMODSEQ %d] Highest" % high)
    got = fetches(lines)
    assert {u: (f, m) for u, (_s, f, m) in got.items()} == {u: truth[u] for u in (3, 5, new)}
    assert all(got[u][0] == seqs[u] for u in got)
    assert sum(1 for line in lines if b"VANISHED" in line) == 1

    # known-uids 1:5: only changes among them (RFC 7162 §3.2.5), with a seq-match.
    lines = ok(c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 1:5 (1:3 1,3,4)))"))
    assert vanished(lines, earlier=True) == [4]
    assert set(fetches(lines)) == {3, 5}
    # A wrong UIDVALIDITY: the client's cache is void, nothing is resynchronised.
    lines = ok(c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {modseq}))"))
    assert not any(b"VANISHED" in line or b"FETCH" in line for line in lines)
    assert b"* %d EXISTS" % len(truth) in lines


def test_uid_fetch_changedsince_vanished(server: RunningServer, clients: list[RawImap]) -> None:
    """RFC 7162 §3.2.6: UID FETCH set (FLAGS) (CHANGEDSINCE m VANISHED) sends the UIDs of
    the set expunged since m as VANISHED (EARLIER) before the FETCH of the changed ones."""
    a = _client(server, clients)
    b = _client(server, clients, qresync=False)
    for _ in range(10):
        append(b)
    ok(b.cmd("SELECT INBOX"))  # b takes the new mail as \\Recent (RFC 3501 §2.3.2)
    _v, since = _saved(ok(a.cmd("SELECT INBOX")))
    ok(b.cmd("UID STORE 3,9 +FLAGS.SILENT (\\Flagged)"))
    ok(b.cmd("UID STORE 4,6,10 +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd("UID EXPUNGE 4,6,10"))
    lines = ok(a.cmd(f"UID FETCH 1:8 (FLAGS) (CHANGEDSINCE {since} VANISHED)"))
    truth = state(server.port("imap"))
    m = truth[3][1]
    # The news for the session's own view comes after, at the end of the command:
    # 4, 6 and 10 leave it (plain VANISHED), 9 is now number 7.
    assert untagged(lines) == [
        b"* VANISHED (EARLIER) 4,6",
        b"* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (%d))" % m,
        b"* VANISHED 4,6,10",
        b"* 7 FETCH (FLAGS (\\Flagged) UID 9 MODSEQ (%d))" % m,
    ]


def test_expunge_and_move_report_vanished(server: RunningServer, clients: list[RawImap]) -> None:
    """Once QRESYNC is on, EXPUNGE, UID EXPUNGE and MOVE answer ``* VANISHED uids``, never
    EXPUNGE (RFC 7162 §3.2.10); EXPUNGE's tagged OK carries the new HIGHESTMODSEQ
    (§3.2.7); another session's expunge reaches a NOOP as VANISHED too."""
    a = _client(server, clients)
    b = _client(server, clients, qresync=False)
    for _ in range(6):
        append(b)
    ok(a.cmd("CREATE Kept"))
    ok(a.cmd("SELECT INBOX"))
    lines = ok(a.cmd("STORE 2,3 +FLAGS.SILENT (\\Deleted)"))
    # .SILENT still gives the new MODSEQ, and with QRESYNC every FETCH names its UID.
    m = state(server.port("imap"))[2][1]
    assert untagged(lines) == [
        b"* 2 FETCH (UID 2 MODSEQ (%d))" % m,
        b"* 3 FETCH (UID 3 MODSEQ (%d))" % m,
    ]
    lines = ok(a.cmd("EXPUNGE"))
    st = ok(b.cmd("STATUS INBOX (HIGHESTMODSEQ)"))[0]
    high = int(st.rsplit(b" ", 1)[1].rstrip(b")"))
    assert high > max(m for _f, m in state(server.port("imap")).values())  # the expunge's
    assert untagged(lines) == [b"* VANISHED 2:3"]
    assert lines[-1].endswith(b" OK [HIGHESTMODSEQ %d] EXPUNGE completed" % high)
    lines = ok(a.cmd("MOVE 1 Kept"))
    assert untagged(lines)[1:] == [b"* VANISHED 1"]
    assert untagged(lines)[0].startswith(b"* OK [COPYUID ")
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 5 +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd("UID EXPUNGE 5"))
    assert untagged(ok(a.cmd("NOOP"))) == [b"* VANISHED 5"]
    assert untagged(ok(a.cmd("UID FETCH 1:* (UID)"))) == [
        b"* 1 FETCH (UID 4)",
        b"* 2 FETCH (UID 6)",
    ]
    got = fetches(untagged(ok(a.cmd("STORE 1 +FLAGS (\\Seen)"))))
    assert got == {4: (1, got[4][1], state(server.port("imap"))[4][1])}
    assert b"\\Seen" in got[4][1]


def _highestmodseq(other: RawImap) -> int:
    st = ok(other.cmd("STATUS INBOX (HIGHESTMODSEQ)"))[0]
    return int(st.rsplit(b" ", 1)[1].rstrip(b")"))


def test_tagged_ok_of_uid_expunge_and_close(server: RunningServer, clients: list[RawImap]) -> None:
    """RFC 7162 §3.2.9: with QRESYNC, UID EXPUNGE that removed a message ends in
    ``OK [HIGHESTMODSEQ n]`` (the mailbox's new one). §3.2.8: CLOSE's OK MUST NOT carry
    it (CLOSE reports no VANISHED, so a client that took the value would never learn of
    the messages CLOSE removed): a later SELECT (QRESYNC) from the last value the client
    had still reports them. With CONDSTORE alone, §3.2.7 and §3.2.9 ask for no code."""
    a = _client(server, clients)
    b = _client(server, clients, qresync=False)
    uids = [append(b) for _ in range(4)]
    uidvalidity, _ = _saved(ok(a.cmd("SELECT INBOX")))
    ok(a.cmd(f"UID STORE {uids[0]},{uids[1]} +FLAGS.SILENT (\\Deleted)"))
    lines = ok(a.cmd(f"UID EXPUNGE {uids[0]}"))
    assert untagged(lines) == [b"* VANISHED %d" % uids[0]]
    high = _highestmodseq(b)
    assert lines[-1].endswith(b" OK [HIGHESTMODSEQ %d] UID EXPUNGE completed" % high)

    lines = ok(a.cmd("CLOSE"))
    assert lines == [lines[-1]] and b"HIGHESTMODSEQ" not in lines[-1]
    assert _highestmodseq(b) > high  # CLOSE did expunge, under a new MODSEQ
    lines = ok(a.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {high}))"))
    assert vanished(lines, earlier=True) == [uids[1]]

    c = _client(server, clients, qresync=False)
    assert untagged(ok(c.cmd("ENABLE CONDSTORE"))) == [b"* ENABLED CONDSTORE"]
    ok(c.cmd("SELECT INBOX"))
    ok(c.cmd(f"UID STORE {uids[2]},{uids[3]} +FLAGS.SILENT (\\Deleted)"))
    for command in (f"UID EXPUNGE {uids[2]}", "EXPUNGE"):
        lines = ok(c.cmd(command))
        assert untagged(lines) == [b"* 1 EXPUNGE"]
        assert b"HIGHESTMODSEQ" not in lines[-1], lines


# ---------------------------------------------------------------------- restart


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Callable[[], RunningServer]]:
    """Start (or restart) a server on one data directory: accounts are provisioned once."""
    config = make_config(tmp_path / "r")
    running: list[RunningServer] = []

    def start() -> RunningServer:
        for srv in running:
            srv.stop()
        srv = RunningServer(config)
        srv.start()
        if not running:
            provision(srv)
        running.append(srv)
        return srv

    yield start
    for srv in running:
        srv.stop()


def _deliver(server: RunningServer, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        for i in range(count):
            msg = f"From: x@other.test\r\nSubject: new {i}\r\n\r\nbody {i}\r\n"
            smtp.sendmail("x@other.test", ["alice@example.test"], msg)


def _pop_delete(server: RunningServer, uids: list[int]) -> None:
    """DELE the given INBOX UIDs over POP3 and QUIT (the default policy expunges them)."""
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    try:
        pop.user("alice@example.test")
        pop.pass_(PASSWORD)
        _resp, listing, _octets = pop.uidl()
        number = {}
        for entry in listing:
            n, unique = entry.split()
            number[int(unique.split(b".")[1])] = int(n)
        for uid in uids:
            pop.dele(number[uid])
    finally:
        pop.quit()


def test_qresync_after_200_changes_and_a_restart(
    restartable: Callable[[], RunningServer], clients: list[RawImap]
) -> None:
    """The issue's check: a client saves its state; others make 200 changes (flags,
    expunges and a MOVE over IMAP, deletions over POP3, new mail over SMTP, some of it
    flagged or expunged again); SELECT INBOX (QRESYNC (uidvalidity modseq)) then returns
    exactly those changes — VANISHED (EARLIER) is exactly the UIDs expunged since, the
    FETCHes exactly the messages changed or added since, with their flags and MODSEQ —
    and the same after a restart. Then MODSEQ is not reused: the message with the highest
    MODSEQ is expunged, the server restarted, and the next change gets a higher one."""
    server = restartable()
    port = server.port("imap")
    rng = random.Random(7162)
    b = _client(server, clients, qresync=False)
    ok(b.cmd("CREATE Kept"))
    for _ in range(80):
        append(b)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 1:5 +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd("UID EXPUNGE 1:5"))  # before the saved state: must not come back

    a = _client(server, clients)
    select = ok(a.cmd("SELECT INBOX"))
    uidvalidity, modseq = _saved(select)
    uidnext = code_number(select, "UIDNEXT")
    saved = state(port)
    ok(a.cmd("LOGOUT"))

    changes = 0
    flags = {uid: set(f) for uid, (f, _m) in saved.items()}
    choices = [b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Draft", b"$Work", b"$Later"]

    def add_flag(pool: list[int]) -> None:
        nonlocal changes
        while True:
            uid = rng.choice(pool)
            missing = [f for f in choices if f not in flags.setdefault(uid, set())]
            if missing:
                break
        flag = rng.choice(missing)
        flags[uid].add(flag)
        ok(b.cmd(f"UID STORE {uid} +FLAGS.SILENT ({flag.decode()})"))
        changes += 1

    def expunge(uid: int) -> None:
        nonlocal changes
        ok(b.cmd(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
        ok(b.cmd(f"UID EXPUNGE {uid}"))
        flags.pop(uid, None)
        changes += 1

    for _ in range(100):  # IMAP: flags
        add_flag(sorted(flags))
    for uid in rng.sample(sorted(flags), 20):  # IMAP: expunges
        expunge(uid)
    for uid in rng.sample(sorted(flags), 5):  # IMAP: MOVE to another mailbox
        ok(b.cmd(f"UID MOVE {uid} Kept"))
        flags.pop(uid)
        changes += 1
    _deliver(server, 40)  # SMTP: new mail
    changes += 40
    ok(b.cmd("NOOP"))
    fresh = [u for u in state(port) if u >= uidnext]
    assert len(fresh) == 40
    for _ in range(15):  # IMAP: flags on new mail
        add_flag(fresh)
    for uid in rng.sample(fresh, 5):  # new mail that came and went
        expunge(uid)
    _pop_delete(server, rng.sample(sorted(u for u in flags if u < uidnext), 15))  # POP3
    changes += 15
    assert changes == 200

    truth = state(port)
    uidnext_now = max(truth) + 1
    expected_vanished = [
        u for u in range(1, uidnext_now) if u not in truth and (u in saved or u >= uidnext)
    ]
    expected_fetch = {u: v for u, v in truth.items() if u not in saved or v[0] != saved[u][0]}
    assert len(expected_vanished) == 20 + 5 + 5 + 15
    seqs = {uid: i + 1 for i, uid in enumerate(sorted(truth))}

    def resync(server: RunningServer) -> tuple[list[int], dict[int, tuple[frozenset[bytes], int]]]:
        c = _client(server, clients)
        lines = ok(c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))"))
        assert not any(b"EXPUNGE" in line for line in lines)
        # The mailbox's counter: the POP3 expunges came last, so it is above every row's.
        st = ok(c.cmd("STATUS INBOX (HIGHESTMODSEQ)"))[0]
        high = int(st.rsplit(b" ", 1)[1].rstrip(b")"))
        assert code_number(lines, "HIGHESTMODSEQ") == high > max(m for _f, m in truth.values())
        got = fetches(lines)
        assert all(seq == seqs[uid] for uid, (seq, _f, _m) in got.items())
        # Known UIDs: exactly the saved ones that went.
        known = ",".join(str(u) for u in sorted(saved))
        narrowed = ok(c.cmd(f"EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} {known}))"))
        assert vanished(narrowed, earlier=True) == sorted(set(saved) - set(truth))
        c.close()
        return vanished(lines, earlier=True), {u: (f, m) for u, (_s, f, m) in got.items()}

    gone, changed = resync(server)
    assert gone == expected_vanished
    assert changed == expected_fetch

    server = restartable()
    port = server.port("imap")
    assert state(port) == truth
    assert resync(server) == (expected_vanished, expected_fetch)

    # MODSEQ never reused: expunge the message holding the highest MODSEQ, restart,
    # change another message: its MODSEQ is above both.
    top = max(truth, key=lambda u: truth[u][1])
    b = _client(server, clients, qresync=False)
    before = code_number(ok(b.cmd("SELECT INBOX (CONDSTORE)")), "HIGHESTMODSEQ")
    ok(b.cmd(f"UID STORE {top} +FLAGS.SILENT (\\Deleted)"))
    ok(b.cmd(f"UID EXPUNGE {top}"))
    st = ok(b.cmd("STATUS Kept (HIGHESTMODSEQ)"))  # another mailbox: its own counter
    assert b"HIGHESTMODSEQ" in st[0]
    after_expunge = code_number(ok(b.cmd("EXAMINE INBOX (CONDSTORE)")), "HIGHESTMODSEQ")
    assert after_expunge > truth[top][1]
    server = restartable()
    port = server.port("imap")
    other = min(state(port))
    b = _client(server, clients, qresync=False)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd(f"UID STORE {other} +FLAGS.SILENT (\\Flagged \\Answered \\Seen $Other)"))
    now = state(port)
    assert now[other][1] > after_expunge
    assert max(m for _f, m in now.values()) == now[other][1]
    c = _client(server, clients)
    lines = ok(c.cmd(f"SELECT INBOX (QRESYNC ({uidvalidity} {before}))"))
    assert vanished(lines, earlier=True) == [top]
    assert set(fetches(lines)) == {other}


# ---------------------------------------------------------------------- three sessions


_EXPUNGE = re.compile(rb"^\* (\d+) EXPUNGE$")
_EXISTS = re.compile(rb"^\* (\d+) EXISTS$")


class ClientModel:
    """What a client knows of INBOX, updated response by response: checks that each
    untagged response makes sense at the point it arrives (RFC 9051 §7.4-7.5, RFC 7162
    §3.2.10) and records what it announced."""

    def __init__(self, uids: list[int], *, qresync: bool) -> None:
        self.uids = list(uids)
        self.qresync = qresync
        self.gone: list[int] = []
        self.fetched: dict[int, tuple[frozenset[bytes], int | None]] = {}

    def apply(self, line: bytes) -> None:
        if m := _EXPUNGE.match(line):
            assert not self.qresync, f"EXPUNGE after ENABLE QRESYNC: {line!r}"
            seq = int(m.group(1))
            assert 1 <= seq <= len(self.uids), line
            self.gone.append(self.uids.pop(seq - 1))
        elif line.startswith(b"* VANISHED "):
            assert self.qresync and b"(EARLIER)" not in line, line
            for uid in vanished([line], earlier=False):
                assert uid in self.uids, line  # only UIDs the client knows
                self.uids.remove(uid)
                self.gone.append(uid)
        elif m := _EXISTS.match(line):
            assert int(m.group(1)) == len(self.uids), line
        else:
            got = fetches([line])
            assert len(got) == 1, f"unexpected response {line!r}"
            ((uid, (seq, flags, modseq)),) = got.items()
            assert self.uids[seq - 1] == uid, line  # the number is the client's
            self.fetched[uid] = (flags, modseq)


@pytest.mark.parametrize("qresync", [False, True], ids=["plain", "qresync"])
def test_three_sessions_see_exactly_the_changes(
    server: RunningServer, clients: list[RawImap], qresync: bool
) -> None:
    """One account, three sessions: one in IDLE, one polling with NOOP, and an actor that
    stores \\Seen on a message, moves one and expunges another. Each of the first two sees
    exactly: one FETCH (FLAGS (\\Seen) UID) of the first — with MODSEQ once QRESYNC (and so
    CONDSTORE) is on — and the removal of the other two as EXPUNGE, or as VANISHED when
    QRESYNC is enabled, each response valid where it comes (sequence numbers as the client
    knows them); nothing else."""
    actor = _client(server, clients, qresync=False)
    ok(actor.cmd("CREATE Kept"))
    append(actor, flags="(\\Deleted) ")  # UID 1, to be expunged
    for _ in range(4):
        append(actor)  # UIDs 2-5
    ok(actor.cmd("SELECT INBOX"))  # the actor takes the new mail as \\Recent (RFC 3501)
    idler = _client(server, clients, qresync=qresync)
    poller = _client(server, clients, qresync=qresync)
    ok(idler.cmd("SELECT INBOX"))
    ok(poller.cmd("SELECT INBOX"))
    idler.send(b"i1 IDLE\r\n")
    assert idler.line().startswith(b"+ ")

    ok(actor.cmd("UID STORE 2 +FLAGS.SILENT (\\Seen)"))
    ok(actor.cmd("UID MOVE 4 Kept"))
    ok(actor.cmd("UID EXPUNGE 1"))
    truth = state(server.port("imap"))
    assert sorted(truth) == [2, 3, 5]

    def done(model: ClientModel) -> bool:
        return sorted(model.gone) == [1, 4] and 2 in model.fetched

    idle_model = ClientModel([1, 2, 3, 4, 5], qresync=qresync)

    def idle_done(lines: list[bytes]) -> bool:
        if lines:
            idle_model.apply(lines[-1])
        return done(idle_model)

    read_until(idler, idle_done)
    idler.send(b"DONE\r\n")
    ending = idler.until(b"i1")
    for line in ending[:-1]:
        idle_model.apply(line)  # nothing more, but anything here must make sense too
    assert ending[-1].startswith(b"i1 OK")

    poll_model = ClientModel([1, 2, 3, 4, 5], qresync=qresync)
    for _ in range(100):  # normally the first NOOP has it all
        for line in untagged(ok(poller.cmd("NOOP"))):
            poll_model.apply(line)
        if done(poll_model):
            break
    for model in (idle_model, poll_model):
        assert done(model)
        assert model.uids == [2, 3, 5]
        assert sorted(model.gone) == [1, 4]
        modseq = truth[2][1] if qresync else None
        assert model.fetched == {2: (frozenset({b"\\Seen"}), modseq)}
    # Nothing left over: a further NOOP reports nothing.
    assert untagged(ok(poller.cmd("NOOP"))) == []
    assert untagged(ok(idler.cmd("NOOP"))) == []
