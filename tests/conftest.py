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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last. From the first one on, Playwright's sync API keeps an
    asyncio loop marked as running in the worker's main thread, and no async test can run
    after it there ("Runner.run() cannot be called from a running event loop"). Sorted
    last (a stable sort, the same in every worker), no other test follows one: pytest-xdist
    hands each worker its tests in collection order (with `--no-loadscope-reorder`, in
    pyproject.toml: otherwise `--dist loadgroup` runs the largest group first).

    Among the browser tests, those of an `xdist_group` come first: one worker starts the
    group (test_browser_xss: a minute of fixtures on one worker) while the other runs
    the remaining browser tests, instead of the group being the run's tail alone."""

    def browser(item: pytest.Item) -> bool:
        return item.nodeid.startswith("tests/browser/")

    items.sort(key=lambda item: (browser(item), browser(item) and not _groups(item)))
    if getattr(config.option, "loadgroup", False):
        _name_groups(items)


def _groups(item: pytest.Item) -> list[str]:
    """The item's `xdist_group` names, as pytest-xdist reads them."""
    names = {
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    }
    return sorted(names)


def _name_groups(items: list[pytest.Item]) -> None:
    """Append "@GROUP" to each grouped item's node id, which is how `--dist loadgroup`
    tells the controller which tests belong together. pytest-xdist 3.8 does this by
    setting `item._nodeid`, which pytest 9.2 no longer reads (a node's id is the
    `NodeId` in `item._id`): the groups were silently ignored, and test_browser_xss's
    module fixtures (a server, the whole corpus delivered, every page opened in
    Chromium: ~35 s and ~25 s) were built on both workers. Nothing is done where
    xdist's own step took effect, or on a pytest without `NodeId`."""
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # an older pytest, where xdist's `_nodeid` is the id
        return
    for item in items:
        names = _groups(item)
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = NodeId.parse(item.nodeid + suffix)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the PostgreSQL databases this worker created (tests/pg.py)."""
    from tests import pg

    pg.drop_created()
