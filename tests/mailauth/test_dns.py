"""The dnspython Resolver against a real DNS server on loopback: answers, NXDOMAIN and NODATA
as empty lists, SERVFAIL and timeouts as DnsTempError, long TXT joined, CNAMEs followed."""

from __future__ import annotations

import asyncio

import pytest

from pillarbox.mailauth.dns import BlockingResolver, DnspythonResolver, DnsTempError
from tests.dnsserver import DnsServer


def resolver(server: DnsServer, timeout: float = 2.0) -> DnspythonResolver:
    return DnspythonResolver([server.address], timeout, cache_size=0)


async def test_records_of_each_type(dns_server: DnsServer) -> None:
    """MX, A, AAAA, TXT and PTR come back in the documented shapes."""
    dns_server.add("example.test", "MX", "20 mx2.example.test.")
    dns_server.add("example.test", "MX", "10 mx1.example.test")
    dns_server.add("mx1.example.test", "A", "192.0.2.1")
    dns_server.add("mx1.example.test", "AAAA", "2001:db8::1")
    dns_server.add("example.test", "TXT", "v=spf1 mx -all")
    dns_server.add("1.2.0.192.in-addr.arpa", "PTR", "mx1.example.test.")
    r = resolver(dns_server)
    assert sorted(await r.mx("example.test")) == [
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
    ]
    assert sorted(await r.addresses("mx1.example.test")) == ["192.0.2.1", "2001:db8::1"]
    assert await r.addresses("mx1.example.test", version=4) == ["192.0.2.1"]
    assert await r.addresses("mx1.example.test", version=6) == ["2001:db8::1"]
    assert await r.txt("example.test") == [b"v=spf1 mx -all"]
    assert await r.ptr("192.0.2.1") == ["mx1.example.test"]


async def test_missing_names_and_types_are_empty(dns_server: DnsServer) -> None:
    """NXDOMAIN (unknown name) and NODATA (known name, other type) both give []."""
    dns_server.add("example.test", "A", "192.0.2.1")
    r = resolver(dns_server)
    assert await r.txt("nowhere.test") == []
    assert await r.mx("example.test") == []
    assert await r.addresses("nowhere.test") == []
    assert await r.txt("a." * 130 + "test") == []  # too long to be a DNS name


async def test_long_txt_is_joined_over_tcp(dns_server: DnsServer) -> None:
    """A TXT record of several 255-byte strings is one joined value; the 600-byte answer is
    truncated over UDP and fetched again over TCP."""
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    dns_server.add("sel._domainkey.example.test", "TXT", value)
    assert await resolver(dns_server).txt("sel._domainkey.example.test") == [value.encode()]


async def test_cname_is_followed(dns_server: DnsServer) -> None:
    """The answer for an alias is its target's records."""
    dns_server.add("alias.example.test", "CNAME", "real.example.test.")
    dns_server.add("real.example.test", "TXT", "hello")
    assert await resolver(dns_server).txt("alias.example.test") == [b"hello"]


async def test_servfail_and_timeout_are_temporary(dns_server: DnsServer) -> None:
    """SERVFAIL and no answer at all raise DnsTempError, not an empty result."""
    dns_server.fail("broken.test")
    dns_server.drop("silent.test")
    r = resolver(dns_server, timeout=0.3)
    with pytest.raises(DnsTempError):
        await r.txt("broken.test")
    with pytest.raises(DnsTempError):
        await r.mx("silent.test")
    dns_server.heal("broken.test")
    assert await r.txt("broken.test") == []


async def test_records_change_at_run_time(dns_server: DnsServer) -> None:
    """set() replaces records; the next lookup sees the new data."""
    dns_server.add("example.test", "TXT", "one")
    r = resolver(dns_server)
    assert await r.txt("example.test") == [b"one"]
    dns_server.set("example.test", "TXT", "two", "three")
    assert sorted(await r.txt("example.test")) == [b"three", b"two"]


async def test_blocking_view_from_a_thread(dns_server: DnsServer) -> None:
    """BlockingResolver runs lookups on the loop for code in a worker thread."""
    dns_server.add("example.test", "TXT", "hi")
    blocking = BlockingResolver(resolver(dns_server), asyncio.get_running_loop())
    assert await asyncio.to_thread(blocking.txt, "example.test") == [b"hi"]
