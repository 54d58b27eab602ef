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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last. From the first one on, Playwright's sync API keeps an
    asyncio loop marked as running in the worker's main thread, and no async test can run
    after it there ("Runner.run() cannot be called from a running event loop"). Sorted
    last (a stable sort, the same in every worker), no other test follows one: pytest-xdist
    hands each worker its tests in collection order."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the PostgreSQL databases this worker created (tests/pg.py)."""
    from tests import pg

    pg.drop_created()
