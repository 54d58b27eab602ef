"""check_message end to end: a message signed by a sending domain, checked as received,
with every record served by the DNS server on loopback."""

from __future__ import annotations

import pytest

from pillarbox.mailauth import dkim
from pillarbox.mailauth.check import check_message
from pillarbox.mailauth.dns import DnspythonResolver
from pillarbox.mailauth.zone import dns_records
from tests.dnsserver import DnsServer

MESSAGE = (
    b"From: Alice <alice@sender.test>\r\nTo: bob@receiver.test\r\nSubject: hello\r\n\r\nHi Bob.\r\n"
)


@pytest.fixture
def resolver(dns_server: DnsServer) -> DnspythonResolver:
    dns_server.add("sender.test", "TXT", "v=spf1 ip4:127.0.0.2 -all")
    dns_server.add("_dmarc.sender.test", "TXT", "v=DMARC1; p=reject")
    return DnspythonResolver([dns_server.address], 0.5, cache_size=0)


async def test_signed_mail_from_the_right_host_passes(
    dns_server: DnsServer, resolver: DnspythonResolver
) -> None:
    """SPF, DKIM and DMARC pass; the header says so; nothing to do."""
    key = dkim.generate_key("sender.test", "pb1")
    dns_server.add("pb1._domainkey.sender.test", "TXT", dkim.key_record(key))
    signed = dkim.sign(MESSAGE, key) + MESSAGE
    verdict = await check_message(
        signed,
        client_ip="127.0.0.2",
        helo="mx.sender.test",
        mail_from="alice@sender.test",
        hostname="mx.receiver.test",
        resolver=resolver,
    )
    assert (verdict.spf.result, [r.result for r in verdict.dkim], verdict.dmarc.result) == (
        "pass",
        ["pass"],
        "pass",
    )
    assert verdict.action == "none"
    assert verdict.header.startswith(b"Authentication-Results: mx.receiver.test;\r\n")
    assert b"dmarc=pass header.from=sender.test" in verdict.header


async def test_forgery_is_rejected(resolver: DnspythonResolver) -> None:
    """Unsigned mail from another host with the domain in From: DMARC fail, reject."""
    verdict = await check_message(
        MESSAGE,
        client_ip="192.0.2.66",
        helo="evil.test",
        mail_from="alice@sender.test",
        hostname="mx.receiver.test",
        resolver=resolver,
        sample=lambda: 0.0,
    )
    assert (verdict.spf.result, verdict.dkim, verdict.dmarc.result) == ("fail", (), "fail")
    assert verdict.action == "reject"
    assert b"dkim=none" in verdict.header


async def test_records_from_pillarbox_dns_make_mail_pass(dns_server: DnsServer) -> None:
    """The records `pillarbox dns` prints (mailauth.zone), once published, are enough for
    mail signed with the domain's keys and sent from its MX host to pass every check."""
    keys = [
        dkim.generate_key("pub.test", "pbe"),
        dkim.generate_key("pub.test", "pbr", "rsa-sha256"),
    ]
    dns_server.load_zone(dns_records("pub.test", "mail.pub.test", keys))
    dns_server.add("mail.pub.test", "A", "127.0.0.3")
    message = MESSAGE.replace(b"alice@sender.test", b"alice@pub.test")
    for key in keys:
        message = dkim.sign(message, key) + message
    verdict = await check_message(
        message,
        client_ip="127.0.0.3",
        helo="mail.pub.test",
        mail_from="alice@pub.test",
        hostname="mx.receiver.test",
        resolver=DnspythonResolver([dns_server.address], 0.5, cache_size=0),
    )
    assert verdict.spf.result == "pass"
    assert [r.result for r in verdict.dkim] == ["pass", "pass"]
    assert (verdict.dmarc.result, verdict.dmarc.policy, verdict.action) == (
        "pass",
        "quarantine",
        "none",
    )
    bounce = await check_message(
        message,
        client_ip="127.0.0.3",
        helo="mail.pub.test",
        mail_from="",
        hostname="mx.receiver.test",
        resolver=DnspythonResolver([dns_server.address], 0.5, cache_size=0),
    )
    assert (bounce.spf.result, bounce.spf.identity) == ("pass", "helo")
