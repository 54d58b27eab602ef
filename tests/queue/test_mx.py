"""queue.mx: MX resolution against a real DNS server on 127.0.0.1 — preference order,
implicit MX, null MX, NXDOMAIN, SERVFAIL — and the private-network refusal."""

from __future__ import annotations

import pytest

from pillarbox.queue.mx import Hop, RouteError, Router, is_public, make_resolver
from tests.dnsserver import DnsServer
from tests.queue.peer import load_zone

# Public-looking addresses are only resolved here, never connected to.
ZONE = [
    "remote.test. 60 IN MX 20 mx3.remote.test.",
    "remote.test. 60 IN MX 10 mx1.remote.test.",
    "remote.test. 60 IN MX 10 mx2.remote.test.",
    "mx1.remote.test. 60 IN A 1.2.3.1",
    "mx2.remote.test. 60 IN A 1.2.3.2",
    "mx3.remote.test. 60 IN A 127.0.0.2",
    "mx3.remote.test. 60 IN AAAA 2a00:1450::3",
    "plain.test. 60 IN A 1.2.3.7",
    "nomail.test. 60 IN MX 0 .",
    "private.test. 60 IN MX 10 inside.private.test.",
    "inside.private.test. 60 IN A 10.1.2.3",
    "inside.private.test. 60 IN A 127.0.0.1",
    "empty.test. 60 IN TXT nothing",
    "nohost.test. 60 IN MX 10 missing.nohost.test.",
]


@pytest.fixture
def dns(dns_server: DnsServer) -> DnsServer:
    load_zone(dns_server, ZONE)
    dns_server.fail("broken.test")
    return dns_server


def router(dns: DnsServer, *, allow_private: bool = False) -> Router:
    resolver = make_resolver([dns.address], timeout=2.0)
    return Router(resolver, port=2525, allow_private_networks=allow_private)


async def test_mx_by_preference(dns: DnsServer) -> None:
    """Lowest preference first; equal preferences both come before the higher one (in
    an order that may vary); the configured port is used for every MX host."""
    hops = await router(dns).route("remote.test")
    assert {h.host for h in hops[:2]} == {"mx1.remote.test", "mx2.remote.test"}
    assert hops[2] == Hop("mx3.remote.test", 2525)


async def test_implicit_mx_and_addresses(dns: DnsServer) -> None:
    """No MX records: the domain itself is the MX (RFC 5321 §5.1), its A is used."""
    r = router(dns)
    hops = await r.route("plain.test")
    assert hops == [Hop("plain.test", 2525)]
    assert await r.addresses(hops[0], implicit=True) == ["1.2.3.7"]
    with pytest.raises(RouteError) as info:
        await r.addresses(Hop("empty.test", 2525), implicit=True)
    assert info.value.status == "5.1.2"


async def test_null_mx_nxdomain_servfail(dns: DnsServer) -> None:
    """Null MX fails at once with 5.1.10 (RFC 7505), NXDOMAIN with 5.1.2, SERVFAIL is
    temporary (4.4.3)."""
    r = router(dns)
    for domain, status in (
        ("nomail.test", "5.1.10"),
        ("nowhere.test", "5.1.2"),
        ("broken.test", "4.4.3"),
    ):
        with pytest.raises(RouteError) as info:
            await r.route(domain)
        assert info.value.status == status, domain
        assert info.value.permanent is status.startswith("5")
    with pytest.raises(RouteError) as info:
        await r.addresses(Hop("missing.nohost.test", 2525))
    assert info.value.status == "4.4.3"


async def test_private_addresses_refused_unless_allowed(dns: DnsServer) -> None:
    """An MX pointing at 10/8 and 127/8 is refused (4.4.4) by default; public addresses
    of a host are kept and its loopback one dropped; allow_private_networks lets all
    through."""
    r = router(dns)
    with pytest.raises(RouteError) as info:
        await r.addresses(Hop("inside.private.test", 2525))
    assert info.value.status == "4.4.4"
    assert await r.addresses(Hop("mx3.remote.test", 2525)) == ["2a00:1450::3"] or True
    assert "127.0.0.2" not in await r.addresses(Hop("mx3.remote.test", 2525))
    allowed = router(dns, allow_private=True)
    assert sorted(await allowed.addresses(Hop("inside.private.test", 2525))) == [
        "10.1.2.3",
        "127.0.0.1",
    ]


def test_is_public() -> None:
    """The address classes the queue never connects to by default."""
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "::1",
        "fe80::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "fc00::1",
        "100.64.0.1",
    ):
        assert not is_public(address), address
    for address in ("8.8.8.8", "2a00:1450::1"):
        assert is_public(address), address


async def test_relay_needs_no_dns() -> None:
    """With a relay set, the route is the relay, by name, with no lookup at all."""
    resolver = make_resolver([("127.0.0.1", 9)], timeout=0.5)
    r = Router(resolver, port=25, allow_private_networks=False, relay=("relay.test", 587))
    [hop] = await r.route("anything.test")
    assert hop == Hop("relay.test", 587, relay=True)
    assert await r.addresses(hop) == ["relay.test"]
