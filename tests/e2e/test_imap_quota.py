"""QUOTA (RFC 9208) over real sockets, and the message limit at SMTP delivery.

Pins: CAPABILITY lists QUOTA, QUOTA=RES-STORAGE and QUOTA=RES-MESSAGE but not QUOTASET;
every mailbox of an account is under the quota root "" (RFC 9208 §4.1.2 example:
``* QUOTAROOT INBOX ""`` then ``* QUOTA "" (...)``), which lists STORAGE in units of
1024 octets (§5.1) and MESSAGE (§5.2) when each is limited and nothing for a resource
without a limit (no root at all when neither is); GETQUOTA of another root, or of ""
without limits, and GETQUOTAROOT of a missing mailbox are NO; SETQUOTA is NO and
changes nothing; APPEND and COPY over the message limit are ``NO [OVERQUOTA]`` and add
nothing, a MOVE inside the account is allowed at the limit; SMTP delivery over the
message limit is 552 5.2.2; STATUS DELETED and DELETED-STORAGE (§4.2) count the
\\Deleted messages; imapclient's get_quota_root reads our responses.
"""

from __future__ import annotations

import smtplib
from typing import Any

import pytest
from imapclient import IMAPClient

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_imap_raw import RawImap, status

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MSG = b"From: a@example.test\r\nSubject: hi\r\n\r\n" + b"x" * 1000 + b"\r\n"  # 1039 octets


def set_limits(
    server: RunningServer, address: str, storage: int | None, messages: int | None = None
) -> None:
    accounts: Any = server.services.accounts
    server.call(lambda: accounts.set_quota(address, storage, messages))


def append(c: RawImap, mailbox: str = "INBOX", data: bytes = MSG) -> list[bytes]:
    return c.cmd(f"APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data)


def logged_in(server: RunningServer, user: str = "alice@example.test") -> RawImap:
    c = RawImap(server.port("imap"))
    assert status(c.login(user, PASSWORD)).startswith(b"OK")
    return c


def test_capabilities(server: RunningServer) -> None:
    c = logged_in(server)
    try:
        caps = c.cmd("CAPABILITY")[0].split()
        assert {b"QUOTA", b"QUOTA=RES-STORAGE", b"QUOTA=RES-MESSAGE"} <= set(caps)
        assert b"QUOTASET" not in caps
    finally:
        c.close()


def test_no_limits_no_quota_root(server: RunningServer) -> None:
    c = logged_in(server)
    try:
        lines = c.cmd("GETQUOTAROOT INBOX")
        assert lines[:-1] == [b"* QUOTAROOT INBOX"]
        assert status(lines).startswith(b"OK")
        assert status(c.cmd('GETQUOTA ""')).startswith(b"NO")
    finally:
        c.close()


def test_quota_root_and_usage(server: RunningServer) -> None:
    c = logged_in(server)
    try:
        assert status(append(c)).startswith(b"OK")
        assert status(append(c, "Sent")).startswith(b"OK")
        set_limits(server, "alice@example.test", 2 * 2**30, 100000)
        # RFC 9208 §4.1.2: 2078 octets are 3 units of 1024 (rounded up), 2G is 2097152
        quota = b'* QUOTA "" (STORAGE 3 2097152 MESSAGE 2 100000)'
        assert c.cmd("GETQUOTAROOT INBOX") == [
            b'* QUOTAROOT INBOX ""',
            quota,
            b"t%d OK GETQUOTAROOT completed" % c.n,
        ]
        assert c.cmd("getquotaroot Sent")[:-1] == [b'* QUOTAROOT Sent ""', quota]
        lines = c.cmd('GETQUOTA ""')
        assert lines[:-1] == [quota] and status(lines).startswith(b"OK")
        assert status(c.cmd('GETQUOTA "User quota"')).startswith(b"NO")
        assert status(c.cmd("GETQUOTAROOT Nowhere")).startswith(b"NO [NONEXISTENT]")
        # a resource without a limit is not listed
        set_limits(server, "alice@example.test", 0)
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (MESSAGE 2 100000)']
        set_limits(server, "alice@example.test", 10 * 1024, 0)
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (STORAGE 3 10)']
        # SETQUOTA is refused (no QUOTASET) and changes nothing
        assert status(c.cmd('SETQUOTA "" (STORAGE 1 MESSAGE 1)')).startswith(b"NO [NOPERM]")
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (STORAGE 3 10)']
        # bob's quota root is his own
        bob = logged_in(server, "bob@example.test")
        try:
            assert bob.cmd("GETQUOTAROOT INBOX")[:-1] == [b"* QUOTAROOT INBOX"]
        finally:
            bob.close()
    finally:
        c.close()


def test_over_message_limit(server: RunningServer) -> None:
    set_limits(server, "alice@example.test", None, 2)
    c = logged_in(server)
    try:
        assert status(append(c)).startswith(b"OK")
        assert status(append(c)).startswith(b"OK")
        assert status(append(c)).startswith(b"NO [OVERQUOTA]")
        assert status(append(c, "Trash")).startswith(b"NO [OVERQUOTA]")
        assert b"* 2 EXISTS" in c.cmd("SELECT INBOX")
        assert status(c.cmd("COPY 1 Trash")).startswith(b"NO [OVERQUOTA]")
        assert status(c.cmd("UID COPY 1:* Archive")).startswith(b"NO [OVERQUOTA]")
        assert c.cmd("STATUS Trash (MESSAGES)")[0] == b'* STATUS "Trash" (MESSAGES 0)'
        # a MOVE inside the account changes no count: allowed at the limit
        lines = c.cmd("MOVE 1 Trash")
        assert status(lines).startswith(b"OK"), lines
        assert c.cmd("STATUS Trash (MESSAGES)")[0] == b'* STATUS "Trash" (MESSAGES 1)'
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (MESSAGE 2 2)']
        # expunging makes room again
        assert status(c.cmd("STORE 1 +FLAGS (\\Deleted)")).startswith(b"OK")
        assert status(c.cmd("EXPUNGE")).startswith(b"OK")
        assert status(append(c)).startswith(b"OK")
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (MESSAGE 2 2)']
    finally:
        c.close()


def test_over_storage_limit(server: RunningServer) -> None:
    set_limits(server, "alice@example.test", 2 * len(MSG) + 10)
    c = logged_in(server)
    try:
        assert status(append(c)).startswith(b"OK")
        assert status(append(c)).startswith(b"OK")
        assert status(append(c)).startswith(b"NO [OVERQUOTA]")
        c.cmd("SELECT INBOX")
        assert status(c.cmd("COPY 1 Trash")).startswith(b"NO [OVERQUOTA]")
        assert status(c.cmd("MOVE 1 Trash")).startswith(b"OK")
    finally:
        c.close()


def test_status_deleted_storage(server: RunningServer) -> None:
    """RFC 9208 §4.2: DELETED counts the \\Deleted messages, DELETED-STORAGE what
    expunging them frees, in the STORAGE resource's units of 1024 octets (rounded up)."""
    c = logged_in(server)
    try:
        other = b"Subject: two\r\n\r\nbody\r\n"
        assert status(append(c)).startswith(b"OK")
        assert status(append(c, data=other)).startswith(b"OK")
        assert c.cmd("STATUS INBOX (DELETED DELETED-STORAGE)")[0] == (
            b'* STATUS "INBOX" (DELETED 0 DELETED-STORAGE 0)'
        )
        c.cmd("SELECT INBOX")
        assert status(c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")).startswith(b"OK")
        assert c.cmd("STATUS INBOX (deleted-storage DELETED SIZE)")[0] == (
            b'* STATUS "INBOX" (DELETED-STORAGE %d DELETED 2 SIZE %d)'
            % (-(-(len(MSG) + len(other)) // 1024), len(MSG) + len(other))
        )
        assert status(c.cmd("STORE 1 -FLAGS.SILENT (\\Deleted)")).startswith(b"OK")
        assert c.cmd("STATUS INBOX (DELETED-STORAGE)")[0] == (
            b'* STATUS "INBOX" (DELETED-STORAGE %d)' % -(-len(other) // 1024)
        )
    finally:
        c.close()


def test_imapclient_get_quota_root(server: RunningServer) -> None:
    set_limits(server, "alice@example.test", 2048, 10)
    client = IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=30)
    try:
        client.login("alice@example.test", PASSWORD)
        client.append("INBOX", MSG)
        roots, quotas = client.get_quota_root("INBOX")
        assert (roots.mailbox, roots.quota_roots) == ("INBOX", [""])
        assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
            ("", "STORAGE", 2, 2),
            ("", "MESSAGE", 1, 10),
        ]
        assert [(q.resource, q.usage) for q in client.get_quota("INBOX")] == [
            ("STORAGE", 2),
            ("MESSAGE", 1),
        ]
    finally:
        client.logout()


def test_smtp_delivery_over_message_limit(server: RunningServer) -> None:
    """The message limit refuses delivery with 552 5.2.2, as the byte quota does."""
    set_limits(server, "bob@example.test", None, 1)
    mail = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: s\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        assert smtp.sendmail("a@remote.test", ["bob@example.test"], mail) == {}
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("a@remote.test", ["bob@example.test"], mail)
        assert refused.value.smtp_code == 552
        assert refused.value.smtp_error.startswith(b"5.2.2 ")
    c = logged_in(server, "bob@example.test")
    try:
        assert c.cmd('GETQUOTA ""')[:-1] == [b'* QUOTA "" (MESSAGE 1 1)']
    finally:
        c.close()
