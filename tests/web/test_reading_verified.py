"""The "verified sender" mark on the message page, from mail delivered over SMTP.

A DNS server on loopback publishes the senders' SPF, DKIM and DMARC records, and the
client's address (127.0.0.1) is taken out of `[mailauth] trusted_networks`, so our own
MX checks each message and writes its Authentication-Results field, as in production.

Pins: a DKIM-signed message whose DMARC passes shows the mark; a message whose only
"pass" is a field another server wrote (another authserv-id) does not; nor one that
forged a field in our own name (our MX removed it); nor, when our field says
dmarc=fail; nor a local user's submission carrying a forged field in our name (it sits
below our Received line). The mark is shown as text a person reads, once.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator

import pytest

from pillarbox.mailauth.dkim import generate_key, key_record, sign
from tests.dnsserver import DnsServer
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient

HOST = "mail.example.test"  # the test server's host name: our authserv-id
MARK = "verified sender"


@pytest.fixture
def checked(server_factory: Callable[..., RunningServer], dns_server: DnsServer) -> RunningServer:
    return server_factory(
        dns={"nameservers": [dns_server.nameserver], "timeout": 2.0},
        mailauth={"trusted_networks": []},
    )


@pytest.fixture
def reader(checked: RunningServer) -> Iterator[WebClient]:
    with WebClient(checked) as client:
        client.sign_in("alice@example.test")
        yield client


def message(sender: str, subject: str, extra: str = "") -> bytes:
    return (
        f"From: Sender <{sender}>\r\nTo: <alice@example.test>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n{extra}\r\nHello Alice.\r\n"
    ).encode()


def send(server: RunningServer, sender: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.test") as s:
        s.sendmail(sender, ["alice@example.test"], data)


def open_newest(client: WebClient) -> str:
    """The newest message's page, opened from the folder list as a person would."""
    folder = client.get("/folder?f=INBOX").text
    link = re.search(r'href="(/read\?[^"]+)"', folder)
    assert link, folder
    page = client.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200
    return page.text


def test_dkim_and_dmarc_pass_is_verified(
    checked: RunningServer, dns_server: DnsServer, reader: WebClient
) -> None:
    key = generate_key("good.test", "s1")
    dns_server.add("good.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    dns_server.add("_dmarc.good.test", "TXT", "v=DMARC1; p=reject")
    dns_server.add("s1._domainkey.good.test", "TXT", key_record(key))
    data = message("news@good.test", "signed one")
    send(checked, "news@good.test", sign(data, key) + data)
    page = open_newest(reader)
    assert "signed one" in page
    assert page.count(MARK) == 1


def test_dkim_pass_aligned_without_dmarc_record_is_verified(
    checked: RunningServer, dns_server: DnsServer, reader: WebClient
) -> None:
    """No DMARC record (dmarc=none), but a DKIM signature of the From domain passed."""
    key = generate_key("mail.plain.test", "s2")
    dns_server.add("plain.test", "TXT", "v=spf1 -all")
    dns_server.add("s2._domainkey.mail.plain.test", "TXT", key_record(key))
    data = message("me@plain.test", "aligned by org domain")
    send(checked, "me@plain.test", sign(data, key) + data)
    page = open_newest(reader)
    assert "aligned by org domain" in page and MARK in page


def test_forged_and_foreign_results_are_not_believed(
    checked: RunningServer, dns_server: DnsServer, reader: WebClient
) -> None:
    """Unsigned, SPF fails, no DMARC record: another server's "pass" and a field forged
    in our own name do not make the mark."""
    dns_server.add("bank.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    forged = f"Authentication-Results: {HOST}; dkim=pass header.d=bank.test; dmarc=pass\r\n"
    foreign = "Authentication-Results: mx.elsewhere.test; dmarc=pass header.from=bank.test\r\n"
    send(checked, "ceo@bank.test", message("ceo@bank.test", "pay now", forged + foreign))
    page = open_newest(reader)
    assert "pay now" in page
    assert MARK not in page


def test_dkim_of_another_domain_is_not_verified(
    checked: RunningServer, dns_server: DnsServer, reader: WebClient
) -> None:
    """A valid signature, but by a domain unrelated to From (dkim=pass, not aligned)."""
    key = generate_key("bulk-sender.test", "s1")
    dns_server.add("s1._domainkey.bulk-sender.test", "TXT", key_record(key))
    data = message("offers@shop.test", "unaligned")
    send(checked, "bounce@bulk-sender.test", sign(data, key) + data)
    page = open_newest(reader)
    assert "unaligned" in page and MARK not in page


def test_local_submission_cannot_forge_the_mark(checked: RunningServer, reader: WebClient) -> None:
    """bob, a local user, submits a message carrying a field in our name: our
    Received line is above it, so it is not ours."""
    forged = f"Authentication-Results: {HOST}; dmarc=pass header.from=example.test\r\n"
    data = message("bob@example.test", "from bob", forged)
    with smtplib.SMTP("127.0.0.1", checked.port("submission")) as s:
        s.login("bob@example.test", PASSWORD)
        s.sendmail("bob@example.test", ["alice@example.test"], data)
    page = open_newest(reader)
    assert "from bob" in page and MARK not in page
