"""POP3 end to end: a real server on 127.0.0.1 driven by poplib, fetchmail and curl.

Mail is put in INBOX directly through the store API (what delivery does); what each
on-retrieve policy does is checked the way a user sees it, from an IMAP session of the
same account.
"""

from __future__ import annotations

import dataclasses
import imaplib
import poplib
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pillarbox.message.parse import parse
from pillarbox.model import FlagRow, MessageMeta, PopOnRetrieve, PopScope
from tests.e2e.conftest import PASSWORD, RunningServer

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

ALICE = "alice@example.test"


def message(n: int, size: int = 0) -> bytes:
    body = b"".join(b"line %d of the body\r\n" % i for i in range(size // 20 + 1))
    return (
        f"From: bob@example.test\r\nTo: {ALICE}\r\nSubject: message {n}\r\n"
        f"Message-ID: <m{n}@example.test>\r\n\r\n".encode()
        + b".a line starting with a dot\r\n"
        + body
    )


# --- helpers ------------------------------------------------------------------------


def deliver(server: RunningServer, data: bytes, address: str = ALICE) -> int:
    async def op() -> int:
        store = server.store
        account = await store.get_account(address)
        inbox = await store.get_mailbox(account.id, "INBOX")
        writer = store.new_blob()
        await writer.write(data)
        blob = await writer.finish()
        meta = MessageMeta(**dataclasses.asdict(parse(data)))
        return int((await store.append(inbox.id, blob, meta)).uid)

    return server.call(op)


def mailbox_rows(server: RunningServer, name: str, address: str = ALICE) -> list[FlagRow]:
    async def op() -> list[FlagRow]:
        store = server.store
        account = await store.get_account(address)
        box = await store.get_mailbox(account.id, name)
        uids = await store.uids(box.id)
        return list(await store.fetch_flags(box.id, uids))

    return server.call(op)


def set_policy(server: RunningServer, on_retrieve: str, scope: str = "all") -> None:
    server.call(
        lambda: server.services.accounts.set_pop_policy(
            ALICE, PopOnRetrieve(on_retrieve), PopScope(scope)
        )
    )


def login(server: RunningServer, user: str = ALICE) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    client.user(user)
    client.pass_(PASSWORD)
    return client


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition until it holds (the server works in its own thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def lock_released(server: RunningServer) -> bool:
    async def op() -> bool:
        account = await server.store.get_account(ALICE)
        return not await server.services.pop.is_locked(account.id)

    return server.call(op)


class Raw:
    """A line-level client for what poplib refuses to send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.line().startswith(b"+OK")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def cmd(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.line()

    def multiline(self) -> list[bytes]:
        lines = []
        while (line := self.line()) != b".\r\n":
            assert line, "connection closed"
            lines.append(line)
        return lines

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# --- poplib -------------------------------------------------------------------------


def test_capa_and_greeting(server: RunningServer) -> None:
    """RFC 2449 CAPA lists what we implement; STLS is offered on the plain listener."""
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    assert client.getwelcome().startswith(b"+OK")
    caps = client.capa()
    for name in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "PIPELINING", "EXPIRE",
                 "LOGIN-DELAY", "IMPLEMENTATION", "STLS", "UTF8", "AUTH-RESP-CODE"):  # fmt: skip
        assert name in caps, name
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    assert caps["EXPIRE"] == ["NEVER"]
    client.quit()


def test_download_retr_list_uidl_top(server: RunningServer) -> None:
    """A whole session: STAT, LIST, UIDL, RETR (dot-stuffed), TOP with n lines."""
    data = [message(1), message(2, size=300)]
    for d in data:
        deliver(server, d)
    client = login(server)
    assert client.stat() == (2, sum(len(d) for d in data))
    _, listing, _ = client.list()
    assert listing == [b"1 %d" % len(data[0]), b"2 %d" % len(data[1])]
    assert client.list(2).split() == [b"+OK", b"2", str(len(data[1])).encode()]
    _, uidl, _ = client.uidl()
    assert len({line.split()[1] for line in uidl}) == 2
    for i, d in enumerate(data, start=1):
        _, lines, _ = client.retr(i)
        assert b"\r\n".join(lines) + b"\r\n" == d  # poplib un-stuffs the leading dot
    _, top, _ = client.top(2, 1)
    head = data[1].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert top == [*head, b"", b".a line starting with a dot"]
    client.quit()


def test_keep_policy_second_run_downloads_nothing_new(server: RunningServer) -> None:
    """Leave-on-server client: after one run, UIDL shows only what it already has."""
    set_policy(server, "keep")
    for n in range(3):
        deliver(server, message(n))
    seen: set[bytes] = set()
    client = login(server)
    for line in client.uidl()[1]:
        number, uid = line.split()
        client.retr(int(number))
        seen.add(uid)
    client.quit()
    assert len(seen) == 3
    client = login(server)
    assert {line.split()[1] for line in client.uidl()[1]} <= seen
    client.quit()
    deliver(server, message(9))
    client = login(server)
    fresh = [line for line in client.uidl()[1] if line.split()[1] not in seen]
    assert len(fresh) == 1
    assert client.retr(int(fresh[0].split()[0]))[1][2] == b"Subject: message 9"
    client.quit()
    assert len(mailbox_rows(server, "INBOX")) == 4


def test_delete_empties_the_maildrop(server: RunningServer) -> None:
    """Default policy: DELE + QUIT really removes the messages."""
    for n in range(3):
        deliver(server, message(n))
    client = login(server)
    for i in (1, 2, 3):
        client.retr(i)
        client.dele(i)
    assert client.quit().startswith(b"+OK")
    assert mailbox_rows(server, "INBOX") == []
    client = login(server)
    assert client.stat() == (0, 0)
    client.quit()


def test_rset_restores(server: RunningServer) -> None:
    """RSET unmarks every DELE: nothing is deleted at QUIT."""
    for n in range(2):
        deliver(server, message(n))
    client = login(server)
    client.dele(1)
    client.dele(2)
    assert client.stat()[0] == 0
    client.rset()
    assert client.stat()[0] == 2
    client.quit()
    assert len(mailbox_rows(server, "INBOX")) == 2


def test_dropped_connection_deletes_nothing(server: RunningServer) -> None:
    """DELE without QUIT: the connection drops, the messages stay, the lock goes."""
    for n in range(2):
        deliver(server, message(n))
    client = login(server)
    client.dele(1)
    client.dele(2)
    client.sock.close()
    client.file.close()
    wait_for(lambda: lock_released(server))
    assert len(mailbox_rows(server, "INBOX")) == 2
    client = login(server)
    assert client.stat()[0] == 2
    client.quit()


def test_second_login_is_in_use(server: RunningServer) -> None:
    """RFC 2449 [IN-USE]: the maildrop is locked while another session holds it."""
    first = login(server)
    second = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    second.user(ALICE)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    second.user(ALICE)  # the same connection may try again once the lock is free
    assert second.pass_(PASSWORD).startswith(b"+OK")
    second.quit()


def test_messages_arriving_during_a_session_wait_for_the_next(server: RunningServer) -> None:
    """The maildrop is a snapshot taken at login."""
    deliver(server, message(1))
    client = login(server)
    deliver(server, message(2))
    assert client.stat()[0] == 1
    client.quit()
    client = login(server)
    assert client.stat()[0] == 2
    client.quit()


def imap_login(server: RunningServer) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    client.login(ALICE, PASSWORD)
    return client


def imap_uids(client: imaplib.IMAP4) -> list[int]:
    typ, data = client.uid("SEARCH", "ALL")
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


@pytest.mark.parametrize("policy", ["keep", "mark-read", "archive", "delete"])
def test_each_on_retrieve_policy_as_imap_sees_it(server: RunningServer, policy: str) -> None:
    """DELE + QUIT under each policy, watched by an IMAP session with INBOX selected:
    keep changes nothing, mark-read sends FLAGS (\\Seen), archive and delete send EXPUNGE
    (archive's message shows up in Archive). POP3 never lists the message again."""
    set_policy(server, policy)
    uids = [deliver(server, message(n)) for n in range(2)]
    imap = imap_login(server)
    imap.select("INBOX")
    client = login(server)
    client.retr(1)
    client.dele(1)
    assert client.quit().startswith(b"+OK")
    assert imap.noop()[0] == "OK"
    expunged = imap.response("EXPUNGE")[1]
    fetched = imap.response("FETCH")[1]
    _, flags = imap.fetch("1:*", "(UID FLAGS)")
    if policy == "keep":
        assert expunged == [None] and fetched == [None]
        assert imap_uids(imap) == uids
        assert all(b"\\Seen" not in f for f in flags)
    elif policy == "mark-read":
        assert expunged == [None]
        assert fetched[0] is not None and b"\\Seen" in fetched[0]
        assert imap_uids(imap) == uids
        assert b"\\Seen" in flags[0] and b"\\Seen" not in flags[1]
    else:
        assert expunged == [b"1"]
        assert imap_uids(imap) == uids[1:]
    typ, status = imap.status("Archive", "(MESSAGES)")
    assert typ == "OK"
    assert status[0].endswith(b"(MESSAGES %d)" % (1 if policy == "archive" else 0))
    imap.logout()
    client = login(server)
    assert client.stat()[0] == 1  # POP3 never sees a retrieved-and-deleted message again
    client.quit()


def test_pop3_delete_while_imap_has_inbox_selected(server: RunningServer) -> None:
    """POP3 deletes messages 2 and 4 of 5; at its next NOOP the IMAP session gets two
    EXPUNGEs whose sequence numbers, applied in order (each shifts the ones after it,
    RFC 9051 §7.5.1), remove exactly those messages; its view then matches the store."""
    uids = [deliver(server, message(n)) for n in range(5)]
    imap = imap_login(server)
    _, data = imap.select("INBOX")
    assert data == [b"5"]
    client = login(server)
    client.dele(2)
    client.dele(4)
    _, before, _ = client.uidl()
    client.quit()
    assert len(before) == 3
    imap.noop()
    expunges = imap.response("EXPUNGE")[1]
    assert len(expunges) == 2
    view = list(uids)
    for number in expunges:
        del view[int(number) - 1]
    assert view == [uids[0], uids[2], uids[4]]
    assert imap_uids(imap) == [uids[0], uids[2], uids[4]]
    _, fetched = imap.fetch("1:*", "(UID)")
    assert [int(line.split()[-1].rstrip(b")")) for line in fetched] == [
        uids[0],
        uids[2],
        uids[4],
    ]
    _, body = imap.fetch("3", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: message 4" in body[0][1]
    imap.logout()


def test_scope_from_now(server: RunningServer) -> None:
    """scope from-now: mail from before the policy was set is invisible to POP3."""
    deliver(server, message(1))
    set_policy(server, "delete", "from-now")
    deliver(server, message(2))
    client = login(server)
    assert client.stat()[0] == 1
    assert client.retr(1)[1][2] == b"Subject: message 2"
    client.quit()


def test_large_message_streams_intact(server: RunningServer) -> None:
    """A 5 MB message comes back byte for byte (streamed in chunks, dot-stuffed)."""
    big = message(1, size=5 * 1024 * 1024)
    deliver(server, big)
    client = login(server)
    _, lines, _ = client.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == big
    client.quit()


# --- bad input ------------------------------------------------------------------------


def test_bad_input_gets_err_and_session_stays_usable(server: RunningServer) -> None:
    """Overlong lines, unknown commands, wrong state, bad numbers: -ERR, then it goes on."""
    deliver(server, message(1))
    raw = Raw(server.port("pop3"))
    assert raw.cmd(b"STAT").startswith(b"-ERR")  # wrong state
    assert raw.cmd(b"X" * 5000) == b"-ERR Line too long\r\n"
    assert raw.cmd(b"FROB") == b"-ERR Unknown command\r\n"
    assert raw.cmd(b"APOP alice 0123456789abcdef") == b"-ERR Unknown command\r\n"
    assert raw.cmd(b"USER " + ALICE.encode()).startswith(b"+OK")
    assert raw.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
    assert raw.cmd(b"USER bob").startswith(b"-ERR")  # wrong state
    assert raw.cmd(b"RETR 2") == b"-ERR No message 2\r\n"
    assert raw.cmd(b"RETR 0") == b"-ERR Invalid message number\r\n"
    assert raw.cmd(b"TOP 1") == b"-ERR Syntax: TOP msg n\r\n"
    assert raw.cmd(b"DELE 1").startswith(b"+OK")
    assert raw.cmd(b"DELE 1") == b"-ERR Message 1 is already deleted\r\n"
    assert raw.cmd(b"RETR 1") == b"-ERR Message 1 is already deleted\r\n"
    assert raw.cmd(b"LIST 1") == b"-ERR Message 1 is already deleted\r\n"
    assert raw.cmd(b"STAT") == b"+OK 0 0\r\n"
    assert raw.cmd(b"RSET").startswith(b"+OK")
    assert raw.cmd(b"NOOP") == b"+OK\r\n"
    assert raw.cmd(b"QUIT").startswith(b"+OK")
    raw.close()
    assert len(mailbox_rows(server, "INBOX")) == 1


def test_pipelined_commands_are_answered_in_order(server: RunningServer) -> None:
    """RFC 2449 PIPELINING: many commands in one write, replies in order."""
    deliver(server, message(1))
    raw = Raw(server.port("pop3"))
    raw.send(
        b"USER %s\r\nPASS %s\r\nSTAT\r\nUIDL\r\nRETR 1\r\nNOOP\r\nQUIT\r\n"
        % (ALICE.encode(), PASSWORD.encode())
    )
    assert raw.line().startswith(b"+OK")
    assert raw.line().startswith(b"+OK Maildrop locked")
    assert raw.line() == b"+OK 1 %d\r\n" % len(message(1))
    assert raw.line().startswith(b"+OK")
    assert len(raw.multiline()) == 1
    assert raw.line().startswith(b"+OK")
    assert b"".join(raw.multiline()).replace(b"\r\n..", b"\r\n.") == message(1)
    assert raw.line() == b"+OK\r\n"
    assert raw.line().startswith(b"+OK")
    assert raw.line() == b""  # closed after QUIT
    raw.close()


def test_failed_logins_are_slowed_per_ip(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Each failure from an IP waits longer before the -ERR [AUTH] (auth.fail_delay)."""
    server = server_factory(auth={"fail_delay": 0.3, "fail_delay_max": 5.0})
    raw = Raw(server.port("pop3"))
    timings = []
    for _ in range(2):
        raw.cmd(b"USER " + ALICE.encode())
        start = time.monotonic()
        assert raw.cmd(b"PASS wrong") == b"-ERR [AUTH] Authentication failed\r\n"
        timings.append(time.monotonic() - start)
    assert timings[0] >= 0.3 and timings[1] >= 0.6
    assert raw.cmd(b"USER " + ALICE.encode()).startswith(b"+OK")
    assert raw.cmd(b"PASS " + PASSWORD.encode()).startswith(b"+OK")  # still usable
    raw.close()


def test_auth_plain_initial_response_and_challenge(server: RunningServer) -> None:
    """RFC 5034 AUTH PLAIN with an initial response and with a "+ " round trip; LOGIN."""
    import base64

    token = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode())
    raw = Raw(server.port("pop3"))
    assert raw.cmd(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.cmd(b"*") == b"-ERR Authentication cancelled\r\n"
    assert raw.cmd(b"AUTH CRAM-MD5").startswith(b"-ERR")
    assert raw.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0x@example.test\0y")).startswith(
        b"-ERR [AUTH]"
    )
    assert raw.cmd(b"AUTH PLAIN") == b"+ \r\n"
    assert raw.cmd(token).startswith(b"+OK")
    assert raw.cmd(b"STAT") == b"+OK 0 0\r\n"
    raw.close()
    wait_for(lambda: lock_released(server))
    raw = Raw(server.port("pop3"))
    assert raw.cmd(b"UTF8") == b"+OK UTF8 enabled\r\n"
    assert raw.cmd(b"AUTH PLAIN " + token).startswith(b"+OK")
    raw.close()
    wait_for(lambda: lock_released(server))
    raw = Raw(server.port("pop3"))  # AUTH LOGIN through the shared SASL step machine
    assert raw.cmd(b"AUTH LOGIN") == b"+ " + base64.b64encode(b"Username:") + b"\r\n"
    assert raw.cmd(base64.b64encode(ALICE.encode())).startswith(b"+ ")
    assert raw.cmd(base64.b64encode(PASSWORD.encode())).startswith(b"+OK")
    raw.close()


def _client_context(server: RunningServer) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.config.data_path / "tls/selfsigned.crt"))
    return ctx


def test_stls_and_pop3s(server: RunningServer) -> None:
    """RFC 2595 STLS on "pop3", implicit TLS on "pop3s", certificate verified."""
    deliver(server, message(1))
    ctx = _client_context(server)
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    client.stls(ctx)
    assert "STLS" not in client.capa()
    client.user(ALICE)
    client.pass_(PASSWORD)
    assert client.stat()[0] == 1
    client.quit()
    client = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=ctx, timeout=30)
    assert "STLS" not in client.capa()
    client.user(ALICE)
    client.pass_(PASSWORD)
    assert client.retr(1)[1][2] == b"Subject: message 1"
    client.quit()


def test_plaintext_needs_tls_when_configured(
    server_factory: Callable[..., RunningServer],
) -> None:
    """With loopback plaintext disabled, USER/PASS is refused until STLS."""
    server = server_factory(auth={"allow_plaintext_loopback": False})
    client = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=30)
    caps = client.capa()
    assert "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\].*STLS"):
        client.user(ALICE)
    client.stls(_client_context(server))
    assert "USER" in client.capa()
    client.user(ALICE)
    assert client.pass_(PASSWORD).startswith(b"+OK")
    client.quit()


# --- curl ---------------------------------------------------------------------------


def _curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "30", *args],
        capture_output=True,
        check=False,
    )


def test_curl_list_retrieve_delete(server: RunningServer) -> None:
    """curl lists (LIST), retrieves (RETR) and deletes (DELE) with AUTH PLAIN over STLS."""
    for n in range(2):
        deliver(server, message(n))
    base = f"pop3://127.0.0.1:{server.port('pop3')}"
    cafile = str(server.config.data_path / "tls/selfsigned.crt")
    common = ["--user", f"{ALICE}:{PASSWORD}", "--ssl-reqd", "--cacert", cafile,
              "--login-options", "AUTH=PLAIN"]  # fmt: skip
    listing = _curl(*common, base + "/")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines() == [b"1 %d" % len(message(0)), b"2 %d" % len(message(1))]
    got = _curl(*common, base + "/2")
    assert got.returncode == 0, got.stderr
    assert got.stdout == message(1)
    deleted = _curl(*common, "--request", "DELE", "--list-only", base + "/1")
    assert deleted.returncode == 0, deleted.stderr
    assert [r.uid for r in mailbox_rows(server, "INBOX")] == [2]
    implicit = _curl("--user", f"{ALICE}:{PASSWORD}", "--cacert", cafile,
                     f"pop3s://127.0.0.1:{server.port('pop3s')}/1")  # fmt: skip
    assert implicit.returncode == 0, implicit.stderr
    assert implicit.stdout == message(1)


# --- fetchmail ------------------------------------------------------------------------


def _fetchmail(server: RunningServer, tmp: Path, options: str) -> list[bytes]:
    """Run fetchmail once over STLS (certificate checked); return the messages it got."""
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    before = set(out.iterdir())
    rc = tmp / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        # the certificate names "localhost", not the IP fetchmail would check
        f"poll localhost via 127.0.0.1 service {server.port('pop3')} protocol pop3 uidl\n"
        f'  user "{ALICE}" there with password "{PASSWORD}" is "nobody" here\n'
        f'  options {options} sslcertck sslcommonname "localhost"'
        f' sslcertfile "{server.config.data_path / "tls/selfsigned.crt"}"'
        f" sslproto tls1.2+\n"
        f'  mda "cat > {out}/$(date +%s%N)-$$"\n'
    )
    rc.chmod(0o600)
    result = subprocess.run(
        ["fetchmail", "-f", str(rc), "--idfile", str(tmp / "ids"), "--nodetach",
         "--pidfile", str(tmp / "pid"), "-v"],
        capture_output=True,
        check=False,
        timeout=120,
        env={"HOME": str(tmp), "PATH": "/usr/bin:/bin", "FETCHMAILUSER": "nobody"},
    )  # fmt: skip
    # 0: mail retrieved; 1: no new mail (RFC-free fetchmail exit codes)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return [p.read_bytes() for p in sorted(set(out.iterdir()) - before)]


def test_fetchmail_keep_then_nothing_new_then_delete(server: RunningServer, tmp_path: Path) -> None:
    """fetchmail with keep + UIDL: a second run gets nothing; "flush" empties INBOX."""
    for n in range(3):
        deliver(server, message(n))
    first = _fetchmail(server, tmp_path, "keep")
    assert len(first) == 3
    assert all(b"Subject: message" in m for m in first)
    assert _fetchmail(server, tmp_path, "keep") == []
    deliver(server, message(7))
    assert len(_fetchmail(server, tmp_path, "keep")) == 1
    assert len(mailbox_rows(server, "INBOX")) == 4
    # nokeep + flush: DELE every message, old and new; the default policy really deletes
    deliver(server, message(8))
    assert len(_fetchmail(server, tmp_path, "nokeep flush")) == 1
    assert mailbox_rows(server, "INBOX") == []
