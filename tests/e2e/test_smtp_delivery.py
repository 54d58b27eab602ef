"""SMTP end to end with smtplib: MX delivery into local mailboxes with trace headers,
aliases, catch-all, sub-addressing, unknown recipients, submission over STARTTLS and
implicit TLS with AUTH, sender rules, header fixes, the outbound queue and Sent copies."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.e2e.test_smtp_helpers import add_alias, client_tls, headers_of, mailbox, queue

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py

MSG = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Mon, 02 Jan 2023 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.test>\r\n"
    b"\r\n"
    b"Body line one.\r\n.leading dot\r\n"
)


def mx(server: RunningServer) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30)


def submission(server: RunningServer, user: str = "alice@example.test") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", server.port("submission"), "client.test", timeout=30)
    client.starttls(context=client_tls())
    client.login(user, PASSWORD)
    return client


def test_mx_delivery_with_trace_headers(server: RunningServer) -> None:
    """A message to a local user lands in INBOX with Return-Path, Delivered-To and a
    Received line naming the client, us, the protocol and an id; it is readable from the
    store as soon as the 250 is read, and the body (dot-unstuffed) is intact."""
    with mx(server) as client:
        refused = client.sendmail("sender@remote.test", ["bob@example.test"], MSG)
    assert refused == {}
    (stored,) = mailbox(server, "bob@example.test")
    fields = headers_of(stored)
    assert fields[0] == ("Return-Path", "<sender@remote.test>")
    assert fields[1] == ("Delivered-To", "bob@example.test")
    assert fields[2][0] == "Received"
    received = fields[2][1]
    assert received.startswith("from client.test ([127.0.0.1])")
    assert "by mail.example.test (Pillarbox) with ESMTP id " in received
    assert "for <bob@example.test>;" in received
    assert stored.endswith(MSG)


def test_mx_several_recipients_one_copy_each(server: RunningServer) -> None:
    """One transaction for three local mailboxes: each gets its own Delivered-To; the
    Received line does not reveal the other recipients."""
    with mx(server) as client:
        client.sendmail(
            "s@remote.test",
            ["alice@example.test", "bob@example.test", "carol@other.test"],
            MSG,
        )
    for user in ("alice@example.test", "bob@example.test", "carol@other.test"):
        (stored,) = mailbox(server, user)
        fields = dict(headers_of(stored)[:3])
        assert fields["Delivered-To"] == user
        assert " for " not in fields["Received"]
        assert stored.endswith(MSG)


def test_unknown_recipient_rejected_at_rcpt(server: RunningServer) -> None:
    with mx(server) as client:
        client.ehlo()
        client.mail("s@remote.test")
        code, text = client.rcpt("nobody@example.test")
        assert (code, text[:5]) == (550, b"5.1.1")
        assert client.rcpt("bob@example.test")[0] == 250
        code, _ = client.data(MSG)
        assert code == 250
    assert len(mailbox(server, "bob@example.test")) == 1


def test_alias_catch_all_and_subaddress(server: RunningServer) -> None:
    """Aliases expand (also to several targets), a catch-all takes unknown local parts,
    and user+tag goes to user with the tag kept in Delivered-To."""
    add_alias(server, "team@example.test", "alice@example.test", "bob@example.test")
    add_alias(server, "@other.test", "carol@other.test")
    with mx(server) as client:
        client.sendmail("s@remote.test", ["team@example.test"], MSG)
        client.sendmail("s@remote.test", ["whoever@other.test"], MSG)
        client.sendmail("s@remote.test", ["alice+lists@example.test"], MSG)
        # an alias and a direct recipient reaching the same mailbox: one copy
        client.sendmail("s@remote.test", ["team@example.test", "bob@example.test"], MSG)
    alice = mailbox(server, "alice@example.test")
    bob = mailbox(server, "bob@example.test")
    carol = mailbox(server, "carol@other.test")
    assert len(alice) == 3 and len(bob) == 2 and len(carol) == 1
    assert dict(headers_of(carol[0]))["Delivered-To"] == "carol@other.test"
    assert dict(headers_of(alice[1]))["Delivered-To"] == "alice+lists@example.test"


def test_submission_starttls_auth_local_and_remote(server: RunningServer) -> None:
    """Submission: STARTTLS, AUTH, then local recipients get copies and remote ones are
    queued with their DSN parameters; Received says ESMTPSA with the TLS cipher."""
    with submission(server) as client:
        client.sendmail(
            "alice@example.test",
            ["bob@example.test", "dave@remote.test"],
            MSG,
            mail_options=["RET=HDRS", "ENVID=env1"],
            rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;x@remote.test"],
        )
    (stored,) = mailbox(server, "bob@example.test")
    received = dict(headers_of(stored))["Received"]
    assert "with ESMTPSA id" in received and "cipher=" in received and "TLSv1." in received
    (queued,) = queue(server)
    assert queued.sender == "alice@example.test"
    assert [r.address for r in queued.recipients] == ["dave@remote.test"]
    assert queued.recipients[0].notify == "FAILURE,DELAY"
    assert queued.recipients[0].orcpt == "rfc822;x@remote.test"
    assert (queued.dsn_envid, queued.dsn_ret) == ("env1", "HDRS")
    assert mailbox(server, "alice@example.test", "Sent") == []


def test_submissions_implicit_tls(server: RunningServer) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1", server.port("submissions"), "client.test", timeout=30, context=client_tls()
    ) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        client.login("bob@example.test", PASSWORD)
        client.sendmail(
            "bob@example.test", ["alice@example.test"], MSG.replace(b"Alice <alice", b"Bob <bob")
        )
    (stored,) = mailbox(server, "alice@example.test")
    assert "with ESMTPSA" in dict(headers_of(stored))["Received"]


def test_submission_requires_auth(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as client:
        client.starttls(context=client_tls())
        client.ehlo()
        code, text = client.mail("alice@example.test")
        assert (code, text[:5]) == (530, b"5.7.0")


def test_spoofed_sender_refused(server: RunningServer) -> None:
    """Envelope sender and From: must be the user's own address or alias (553 5.7.1)."""
    add_alias(server, "sales@example.test", "alice@example.test")
    with submission(server) as client:
        code, text = client.mail("bob@example.test")
        assert (code, text[:5]) == (553, b"5.7.1")
        client.rset()
        code, text = client.mail("")
        assert code == 553
        client.rset()
        assert client.mail("sales@example.test")[0] == 250
        client.rset()
        assert client.mail("Alice+Tag@Example.TEST")[0] == 250
        assert client.rcpt("bob@example.test")[0] == 250
        code, text = client.data(MSG.replace(b"Alice <alice@", b"Bob <bob@"))
        assert (code, text[:5]) == (553, b"5.7.1")
        client.rset()
        client.sendmail(
            "sales@example.test", ["bob@example.test"], MSG.replace(b"alice@", b"sales@")
        )
    assert len(mailbox(server, "bob@example.test")) == 1


def test_message_id_and_date_added(server: RunningServer) -> None:
    bare = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nhi\r\n"
    with submission(server) as client:
        client.sendmail("alice@example.test", ["bob@example.test"], bare)
    (stored,) = mailbox(server, "bob@example.test")
    fields = dict(headers_of(stored))
    assert fields["Message-ID"].endswith("@mail.example.test>")
    assert fields["Date"]
    assert stored.endswith(bare)


def test_save_submitted_to_sent(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(smtp={"save_submitted_to_sent": True})
    with submission(server) as client:
        client.sendmail("alice@example.test", ["bob@example.test", "z@remote.test"], MSG)
    (sent,) = mailbox(server, "alice@example.test", "Sent")
    assert sent.endswith(MSG) and b"Delivered-To" not in sent


def test_auth_failure_same_reply(server_factory: Callable[..., RunningServer]) -> None:
    """Unknown user and wrong password get the same 535 5.7.8. (smtplib's login tries
    each offered mechanism: four failures from one address, whose default slow-down,
    0.5 s doubling, took 7.5 s; it is tested in test_login_throttle.py.)"""
    server = server_factory(auth={"fail_delay": 0.05, "fail_delay_max": 2.0})
    replies = []
    for user, password in (("nobody@example.test", PASSWORD), ("alice@example.test", "wrong")):
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=30) as client:
            client.starttls(context=client_tls())
            with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                client.login(user, password)
            replies.append((info.value.smtp_code, info.value.smtp_error))
    assert replies[0] == replies[1] == (535, b"5.7.8 Authentication credentials invalid")


def test_mx_offers_no_auth(server: RunningServer) -> None:
    with mx(server) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        for ext in (
            "pipelining",
            "size",
            "8bitmime",
            "smtputf8",
            "enhancedstatuscodes",
            "chunking",
            "dsn",
            "starttls",
        ):
            assert client.has_extn(ext), ext
        assert client.docmd("AUTH PLAIN AGFAYg==")[0] == 503
