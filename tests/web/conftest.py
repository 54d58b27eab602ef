"""The webmail's tests drive a real Pillarbox (tests/e2e/conftest.py: every listener on a
127.0.0.1 ephemeral port, a real SQLite store) over HTTP with httpx, and check what
they did over IMAP with imaplib, the way a person with a browser and a phone would."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import RunningServer, e2e_backend, server_factory
from tests.web.client import WebClient

__all__ = ["e2e_backend", "server_factory"]


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A provisioned server whose sign-in slow-down is short (the rule, not its size,
    is under test)."""
    return server_factory(auth={"fail_delay": 0.05, "fail_delay_max": 2.0})


@pytest.fixture
def web(server: RunningServer) -> Iterator[WebClient]:
    """A browser with no session yet."""
    with WebClient(server) as client:
        yield client


@pytest.fixture
def alice(server: RunningServer) -> Iterator[WebClient]:
    """A browser signed in as alice@example.test."""
    with WebClient(server) as client:
        client.sign_in("alice@example.test")
        yield client
