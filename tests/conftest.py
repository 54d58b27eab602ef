"""Fixtures shared by every test package."""

from collections.abc import Iterator

import pytest

from tests.dnsserver import DnsServer


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A started authoritative DNS server on 127.0.0.1 (tests/dnsserver.py); empty at first,
    the test adds records with `dns_server.add(name, type, value)`."""
    with DnsServer() as server:
        yield server
