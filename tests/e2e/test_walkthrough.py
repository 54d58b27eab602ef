"""The seed's walk-through, as a user and two operators would live it.

A DNS server on loopback (tests/dnsserver.py) serves the records `pillarbox dns` prints
for `a.test` and `b.test`; two Pillarbox servers run on 127.0.0.2 (mx.a.test) and
127.0.0.3 (mx.b.test), each the MX of its domain, on the same SMTP port. alice@a.test
submits to A on `submission` with STARTTLS and AUTH; A signs with DKIM (the keys of
`pillarbox dkim generate`) and delivers to B over SMTP with STARTTLS, from its own
address; B checks SPF, DKIM and DMARC. bob reads the message over POP3 and over IMAP and
sees one Authentication-Results field with three passes; he replies, and alice gets the
reply the same way.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.dnsserver import DnsServer
from tests.e2e.conftest import RunningServer
from tests.e2e.mtas import by_imap, by_pop3, mta, shared_port, submit, wait_until

pytestmark = pytest.mark.both_backends  # tests/e2e/conftest.py


@pytest.fixture
def servers(tmp_path: Path, dns_server: DnsServer) -> Iterator[tuple[RunningServer, RunningServer]]:
    port = shared_port("127.0.0.2", "127.0.0.3")
    a = mta(tmp_path, "127.0.0.2", "a.test", port, dns_server)
    try:
        b = mta(tmp_path, "127.0.0.3", "b.test", port, dns_server)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def check_authenticated(raw: bytes, *, by: str, sender_domain: str) -> EmailMessage:
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
    results = message.get_all("Authentication-Results") or []
    assert len(results) == 1, results
    [field] = results
    assert field.startswith(by)
    assert "spf=pass" in field and f"@{sender_domain}" in field, field
    assert "dkim=pass" in field and f"header.d={sender_domain}" in field
    assert "dmarc=pass" in field and f"header.from={sender_domain}" in field
    received = message.get_all("Received") or []
    assert any(f"by {by}" in r and "ESMTPS" in r for r in received), received
    return message


def test_alice_writes_to_bob_and_bob_replies(
    servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = servers
    note = EmailMessage()
    note["From"] = "Alice <alice@a.test>"
    note["To"] = "Bob <bob@b.test>"
    note["Subject"] = "Lunch on Friday?"
    note["Message-ID"] = "<lunch.1@a.test>"
    note.set_content("Hi Bob, lunch on Friday? Alice")
    submit(a, "127.0.0.2", "alice@a.test", note)

    over_pop3 = by_pop3(b, "127.0.0.3", "bob@b.test")
    over_imap = by_imap(b, "127.0.0.3", "bob@b.test")
    assert over_pop3 == over_imap
    received = check_authenticated(over_imap, by="mx.b.test", sender_domain="a.test")
    assert received["Subject"] == "Lunch on Friday?"
    assert received.get_content().strip() == "Hi Bob, lunch on Friday? Alice"
    signatures = received.get_all("DKIM-Signature") or []
    assert sorted(s.split("a=")[1].split(";")[0] for s in signatures) == [
        "ed25519-sha256",
        "rsa-sha256",
    ]

    reply = EmailMessage()
    reply["From"] = "Bob <bob@b.test>"
    reply["To"] = "Alice <alice@a.test>"
    reply["Subject"] = "Re: Lunch on Friday?"
    reply["In-Reply-To"] = "<lunch.1@a.test>"
    reply["References"] = "<lunch.1@a.test>"
    reply.set_content("Friday works. Bob")
    submit(b, "127.0.0.3", "bob@b.test", reply)

    answer = check_authenticated(
        by_pop3(a, "127.0.0.2", "alice@a.test"), by="mx.a.test", sender_domain="b.test"
    )
    assert answer["In-Reply-To"] == "<lunch.1@a.test>"
    assert answer.get_content().strip() == "Friday works. Bob"
    # The sender's queue entry goes once the peer's 250 is recorded, a moment after the
    # peer stored the message (which is when POP3 could see it).
    wait_until(
        lambda: a.call(a.services.queue.list) == [] and b.call(b.services.queue.list) == [],
        "both outbound queues empty",
    )
