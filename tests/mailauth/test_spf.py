"""SPF checks through pyspf with our resolver, against the DNS server on loopback."""

from __future__ import annotations

import pytest

from pillarbox.mailauth.dns import DnspythonResolver
from pillarbox.mailauth.spf import check_spf
from tests.dnsserver import DnsServer


@pytest.fixture
def zone(dns_server: DnsServer) -> DnsServer:
    dns_server.add("example.test", "TXT", "v=spf1 mx ip4:198.51.100.0/24 include:other.test -all")
    dns_server.add("example.test", "TXT", "an unrelated TXT record")
    dns_server.add("example.test", "MX", "10 mx.example.test.")
    dns_server.add("mx.example.test", "A", "192.0.2.1")
    dns_server.add("mx.example.test", "AAAA", "2001:db8::1")
    dns_server.add("other.test", "TXT", "v=spf1 a:host.other.test ~all")
    dns_server.add("host.other.test", "A", "203.0.113.9")
    dns_server.add("soft.test", "TXT", "v=spf1 ~all")
    dns_server.add("neutral.test", "TXT", "v=spf1 ?all")
    dns_server.add("bad.test", "TXT", "v=spf1 moo -all")
    dns_server.add("helo.example.test", "TXT", "v=spf1 a -all")
    dns_server.add("helo.example.test", "A", "192.0.2.77")
    dns_server.add("voids.test", "TXT", "v=spf1 a:n1.test a:n2.test a:n3.test -all")
    return dns_server


@pytest.fixture
def resolver(zone: DnsServer) -> DnspythonResolver:
    return DnspythonResolver([zone.address], 0.5, cache_size=0)


@pytest.mark.parametrize(
    ("ip", "sender", "expected"),
    [
        ("192.0.2.1", "alice@example.test", "pass"),  # mx
        ("2001:db8::1", "alice@example.test", "pass"),  # mx over IPv6
        ("198.51.100.7", "alice@example.test", "pass"),  # ip4
        ("203.0.113.9", "alice@Example.TEST", "pass"),  # include:, a:
        ("192.0.2.99", "alice@example.test", "fail"),
        ("192.0.2.99", "bob@soft.test", "softfail"),
        ("192.0.2.99", "bob@neutral.test", "neutral"),
        ("192.0.2.99", "bob@norecord.test", "none"),
        ("192.0.2.99", "bob@bad.test", "permerror"),
        ("192.0.2.99", "bob@voids.test", "permerror"),  # RFC 7208 §4.6.4 void lookups
    ],
)
async def test_results(resolver: DnspythonResolver, ip: str, sender: str, expected: str) -> None:
    """Each SPF result comes from the records served, through our resolver only."""
    result = await check_spf(ip, sender, "client.test", resolver)
    assert result.result == expected, result
    assert result.identity == "mailfrom"
    assert result.domain == sender.split("@")[1].lower()


async def test_null_sender_checks_helo(resolver: DnspythonResolver) -> None:
    """MAIL FROM:<> checks postmaster@HELO (RFC 7208 §2.4)."""
    result = await check_spf("192.0.2.77", "", "helo.example.test", resolver)
    assert (result.result, result.identity, result.domain, result.sender) == (
        "pass",
        "helo",
        "helo.example.test",
        "postmaster@helo.example.test",
    )
    assert (await check_spf("192.0.2.1", "", "helo.example.test", resolver)).result == "fail"


async def test_dns_failure_is_temperror(zone: DnsServer, resolver: DnspythonResolver) -> None:
    """SERVFAIL on the policy, or on a name it includes, is temperror (RFC 7208 §5)."""
    zone.fail("example.test")
    assert (await check_spf("192.0.2.1", "a@example.test", "h.test", resolver)).result == (
        "temperror"
    )
    zone.heal("example.test")
    zone.fail("other.test")
    assert (await check_spf("203.0.113.9", "a@example.test", "h.test", resolver)).result == (
        "temperror"
    )


async def test_bad_client_ip_is_permerror(resolver: DnspythonResolver) -> None:
    """An unusable client address is a permerror, not an exception."""
    assert (await check_spf("not-an-ip", "a@example.test", "h", resolver)).result == "permerror"


async def test_nothing_to_check_is_none(resolver: DnspythonResolver) -> None:
    """Null sender and no HELO name: no identity, result none."""
    result = await check_spf("192.0.2.1", "", "", resolver)
    assert (result.result, result.domain) == ("none", "")
