"""Interoperability with Postfix, an independently written MTA (Debian's, run privately by
tests/postfix_peer.py on loopback).

- Postfix relays mail to Pillarbox's `smtp` listener (with STARTTLS) and to its `lmtp`
  listener, as an operator with Postfix in front would configure it; the users read it
  over IMAP.
- Pillarbox's queue delivers to Postfix, found as the MX of its domain through a DNS
  server on loopback; Postfix passes it on to a second Pillarbox over LMTP, and the DKIM
  signature Pillarbox made still verifies with dkimpy's `dkimverify` at the far end.
"""

from __future__ import annotations

import imaplib
import shutil
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from pillarbox.mailauth.dkim import generate_key, key_record
from tests.dnsserver import DnsServer
from tests.e2e.conftest import PASSWORD, RunningServer, password_hash
from tests.postfix_peer import PostfixPeer

pytestmark = pytest.mark.skipif(
    shutil.which("postfix", path="/usr/sbin:/usr/bin") is None,
    reason="Debian's postfix is not installed (scripts/install-test-tools installs it)",
)


def wait_for_messages(
    server: RunningServer, user: str, count: int, timeout: float = 60.0
) -> list[bytes]:
    """Every message in `user`'s INBOX over IMAP, once there are `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"))
        try:
            imap.login(user, PASSWORD)
            _typ, data = imap.select("INBOX", readonly=True)
            if int(data[0] or 0) >= count:
                _typ, fetched = imap.fetch("1:*", "(BODY.PEEK[])")
                return [part[1] for part in fetched if isinstance(part, tuple)]
        finally:
            imap.logout()
        if time.monotonic() > deadline:
            raise AssertionError(f"{user} has fewer than {count} messages after {timeout}s")
        time.sleep(0.2)  # polling the mailbox for the condition, bounded by the deadline


@pytest.fixture
def postfix_in_front(
    server_factory: Callable[..., RunningServer],
) -> Iterator[tuple[RunningServer, PostfixPeer]]:
    """Pillarbox with LMTP on, and Postfix relaying example.test to its smtp listener and
    other.test to its LMTP listener."""
    server = server_factory()
    transports = {
        "example.test": f"smtp:[127.0.0.1]:{server.port('smtp')}",
        "other.test": f"lmtp:inet:127.0.0.1:{server.port('lmtp')}",
    }
    with PostfixPeer(transports) as postfix:
        yield server, postfix


def test_postfix_delivers_to_smtp_and_lmtp(
    postfix_in_front: tuple[RunningServer, PostfixPeer],
) -> None:
    server, postfix = postfix_in_front
    with smtplib.SMTP("127.0.0.1", postfix.port) as client:
        client.sendmail(
            "sender@peer.test",
            ["bob@example.test", "carol@other.test"],
            b"From: sender@peer.test\r\nSubject: through Postfix\r\n\r\nHello via Postfix.\r\n",
        )
    [to_bob] = wait_for_messages(server, "bob@example.test", 1)
    [to_carol] = wait_for_messages(server, "carol@other.test", 1)
    for message in (to_bob, to_carol):
        assert b"Subject: through Postfix" in message
        assert b"Hello via Postfix." in message
        assert b"by postfix.peer.test (Postfix)" in message
    assert b"with ESMTPS" in to_bob  # Postfix used our STARTTLS
    assert b"with LMTP" in to_carol
    log = postfix.log()
    assert "status=sent" in log and "status=deferred" not in log, log[-2000:]


DKIMVERIFY = (
    "import sys, dns.resolver\n"
    "r = dns.resolver.Resolver(configure=False)\n"
    "r.nameservers = ['127.0.0.1']; r.port = int(sys.argv[1])\n"
    "dns.resolver.default_resolver = r\n"
    "from dkim.dkimverify import main\n"
    "sys.argv = ['dkimverify']\n"
    "main()\n"
)


def test_queue_delivers_through_postfix_and_the_signature_verifies(
    server_factory: Callable[..., RunningServer], dns_server: DnsServer
) -> None:
    """Pillarbox A's queue finds Postfix as the MX of far.test (DNS on loopback), and
    Postfix passes the message over LMTP to Pillarbox B, where dora reads it. The DKIM
    signature A made survives both hops and dkimpy's `dkimverify` (its own code and DNS
    path, in a child process) says "signature ok"."""
    far = server_factory()
    far.call(lambda: far.services.accounts.add_domain("far.test"))
    far.call(lambda: far.store.add_account("dora@far.test", password_hash()))
    with PostfixPeer({"far.test": f"lmtp:inet:127.0.0.1:{far.port('lmtp')}"}) as postfix:
        dns_server.add("far.test", "MX", "10 mx.far.test.")
        dns_server.add("mx.far.test", "A", "127.0.0.1")
        sender = server_factory(
            delivery={"port": postfix.port, "allow_private_networks": True},
            dns={"nameservers": [dns_server.nameserver], "timeout": 2.0},
        )
        key = generate_key("example.test", "pf1")
        sender.call(lambda: sender.store.put_dkim_key(key))
        dns_server.add("pf1._domainkey.example.test", "TXT", key_record(key))
        with smtplib.SMTP("127.0.0.1", sender.port("submission")) as client:
            client.login("alice@example.test", PASSWORD)
            client.sendmail(
                "alice@example.test",
                ["dora@far.test"],
                b"From: Alice <alice@example.test>\r\nTo: dora@far.test\r\n"
                b"Subject: through Postfix, signed\r\nMessage-ID: <pf.1@example.test>\r\n"
                b"\r\nSigned by Pillarbox, carried by Postfix.\r\n",
            )
        [received] = wait_for_messages(far, "dora@far.test", 1)
        log = postfix.log()
    assert b"Signed by Pillarbox, carried by Postfix." in received
    assert b"by postfix.peer.test (Postfix)" in received
    assert "status=sent" in log, log[-2000:]
    assert sender.call(sender.services.queue.list) == []
    run = subprocess.run(
        [sys.executable, "-c", DKIMVERIFY, str(dns_server.port)],
        input=received,
        capture_output=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout) == (0, b"signature ok\n"), run.stderr
