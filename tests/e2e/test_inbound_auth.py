"""SPF, DKIM and DMARC on mail other servers deliver to the `smtp` listener, end to end.

A DNS server on loopback (tests/dnsserver.py) publishes the senders' records; the client
connects from 127.0.0.1, which these tests take out of `[mailauth] trusted_networks`. What
a user sees: one Authentication-Results field for our host name at the top of the stored
message; a forged one claiming our name is gone; `p=reject` with a broken signature is
refused with 550 5.7.1; `p=quarantine` goes to Junk; trusted clients are not checked.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest

from pillarbox.mailauth.dkim import generate_key, key_record, sign
from tests.dnsserver import DnsServer
from tests.e2e.conftest import RunningServer
from tests.e2e.test_smtp_helpers import headers_of, mailbox

HOST = "mail.example.test"  # the e2e server's host name: our authserv-id


@pytest.fixture
def checked(server_factory: Callable[..., RunningServer], dns_server: DnsServer) -> RunningServer:
    return server_factory(
        dns={"nameservers": [dns_server.nameserver], "timeout": 2.0},
        mailauth={"trusted_networks": []},
    )


def message(sender: str, subject: str, extra: str = "") -> bytes:
    return (
        f"From: <{sender}>\r\nTo: <bob@example.test>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n{extra}\r\nHello Bob.\r\n"
    ).encode()


def send(server: RunningServer, sender: str, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.test") as s:
        s.sendmail(sender, ["bob@example.test"], data)


def auth_results(data: bytes) -> list[str]:
    return [v for k, v in headers_of(data) if k.lower() == "authentication-results"]


def test_pass_is_recorded_at_the_top_and_forgeries_removed(
    checked: RunningServer, dns_server: DnsServer
) -> None:
    """SPF pass + DKIM pass (Ed25519) + DMARC pass: one field for our host name, placed
    before the Received line; a forged field claiming our name is removed, another
    server's field stays."""
    key = generate_key("good.test", "s1")
    dns_server.add("good.test", "TXT", "v=spf1 ip4:127.0.0.0/8 -all")
    dns_server.add("_dmarc.good.test", "TXT", "v=DMARC1; p=reject")
    dns_server.add("s1._domainkey.good.test", "TXT", key_record(key))
    forged = f"Authentication-Results: {HOST}; dmarc=pass header.from=bank.test\r\n"
    foreign = "Authentication-Results: mx.elsewhere.test; spf=fail\r\n"
    data = message("alice@good.test", "good one", forged + foreign)
    send(checked, "alice@good.test", sign(data, key) + data)
    [stored] = mailbox(checked, "bob@example.test")
    names = [k.lower() for k, _ in headers_of(stored)]
    assert names[:3] == ["return-path", "delivered-to", "authentication-results"]
    ours = [v for v in auth_results(stored) if v.startswith(HOST)]
    assert len(ours) == 1
    assert "spf=pass" in ours[0] and "dkim=pass" in ours[0] and "dmarc=pass" in ours[0]
    assert "header.d=good.test" in ours[0]
    assert any(v.startswith("mx.elsewhere.test") for v in auth_results(stored))
    assert b"bank.test" not in stored


def test_dmarc_reject_with_broken_signature_is_refused(
    checked: RunningServer, dns_server: DnsServer
) -> None:
    """p=reject, SPF fails and the DKIM signature no longer matches: 550 5.7.1 at the end
    of DATA, and nothing is stored."""
    key = generate_key("strict.test", "s1")
    dns_server.add("strict.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_server.add("_dmarc.strict.test", "TXT", "v=DMARC1; p=reject")
    dns_server.add("s1._domainkey.strict.test", "TXT", key_record(key))
    data = message("ceo@strict.test", "pay now")
    tampered = sign(data, key) + data.replace(b"Hello Bob.", b"Send the money.")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        send(checked, "ceo@strict.test", tampered)
    assert caught.value.smtp_code == 550
    assert caught.value.smtp_error.startswith(b"5.7.1")
    assert mailbox(checked, "bob@example.test") == []


def test_dmarc_quarantine_goes_to_junk(checked: RunningServer, dns_server: DnsServer) -> None:
    dns_server.add("loose.test", "TXT", "v=spf1 -all")
    dns_server.add("_dmarc.loose.test", "TXT", "v=DMARC1; p=quarantine")
    send(checked, "news@loose.test", message("news@loose.test", "offer"))
    assert mailbox(checked, "bob@example.test") == []
    [junk] = mailbox(checked, "bob@example.test", "Junk")
    [ours] = [v for v in auth_results(junk) if v.startswith(HOST)]
    assert "dmarc=fail" in ours and "spf=fail" in ours


def test_trusted_networks_are_not_checked(
    server_factory: Callable[..., RunningServer], dns_server: DnsServer
) -> None:
    """By default loopback is trusted (an MTA or filter in front): no DNS query is made
    and no field is added, so a local relay pays nothing."""
    server = server_factory(dns={"nameservers": [dns_server.nameserver]})
    send(server, "someone@nowhere.test", message("someone@nowhere.test", "local"))
    [stored] = mailbox(server, "bob@example.test")
    assert auth_results(stored) == []
    assert dns_server.queries == []
