"""Fetch sources (the user's other accounts) in Settings, against a second Pillarbox
playing the other provider (POP3 on loopback, private networks allowed here).

Pins: a source added on the page is what `pillarbox fetch list` shows (the service
call), is picked up by the running fetcher at once, and its last run and result are
shown; "fetch now" runs it through the fetcher and says how many messages arrived; a
failed run shows the other server's error; a paused source says so and Resume or an
edit runs it again; the edit form keeps the stored password when left empty; the
password is never in any page; another account's source is 404 everywhere; refused
forms say why.
"""

from __future__ import annotations

import imaplib
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pillarbox.model.fetch import FetchRun
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient, hidden_fields

BOB = "bob@example.test"
REMOTE_USER = "alice@example.test"
REMOTE_PASSWORD = "provider-only secret 4711"


@pytest.fixture
def provider(server_factory: Callable[..., RunningServer]) -> RunningServer:
    """The other provider: alice there has a password of her own."""
    other = server_factory(auth={"fail_delay": 0.05, "fail_delay_max": 0.2})
    other.call(lambda: other.services.accounts.set_password(REMOTE_USER, REMOTE_PASSWORD))
    return other


@pytest.fixture
def local(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory(
        auth={"fail_delay": 0.05, "fail_delay_max": 2.0},
        fetcher={"allow_private_networks": True},
    )


@pytest.fixture
def bob(local: RunningServer) -> Iterator[WebClient]:
    with WebClient(local) as client:
        client.sign_in(BOB)
        yield client


class Pages:
    """Every page the test saw, to look for the password in all of them."""

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self.seen: list[str] = []

    def get(self, url: str) -> Any:
        reply = self.client.get(url)
        self.seen.append(reply.text)
        return reply

    def post(self, url: str, data: dict[str, str]) -> Any:
        form = self.get("/settings" if not url.endswith("/save") else "/settings/fetch/new")
        reply = self.client.post(url, {"csrf": hidden_fields(form.text)["csrf"], **data})
        self.seen.append(reply.text)
        if reply.status_code == 303:
            return self.get(reply.headers["location"])
        return reply


def append(provider: RunningServer, user: str, data: bytes) -> None:
    """A message into alice's Inbox at the provider, over its IMAP."""
    imap = imaplib.IMAP4("127.0.0.1", provider.port("imap"), timeout=30)
    try:
        imap.login(user, REMOTE_PASSWORD)
        typ, _ = imap.append("INBOX", "", None, data)
        assert typ == "OK"
    finally:
        imap.logout()


def message(n: int) -> bytes:
    return (
        f"From: carol@other.test\r\nTo: {REMOTE_USER}\r\nSubject: far {n}\r\n\r\n{n}\r\n".encode()
    )


def source_form(provider: RunningServer, **changes: str) -> dict[str, str]:
    form = {
        "id": "0",
        "protocol": "pop3",
        "host": "127.0.0.1",
        "port": str(provider.port("pop3")),
        "security": "none",
        "username": REMOTE_USER,
        "password": REMOTE_PASSWORD,
        "remote": "keep",
        "days": "30",
        "folder": "INBOX",
        "source_folders": "",
        "interval": "300",
    }
    return {**form, **changes}


def listed(local: RunningServer) -> list[Any]:
    """What `pillarbox fetch list bob@example.test` lists."""
    return list(local.call(lambda: local.services.fetch_sources.list(BOB)))


def inbox_count(local: RunningServer) -> int:
    imap = imaplib.IMAP4("127.0.0.1", local.port("imap"), timeout=30)
    try:
        imap.login(BOB, PASSWORD)
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        return int(data[0])
    finally:
        imap.logout()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)  # polling interval of a condition, not a wait for time


def pause(local: RunningServer, source_id: int) -> None:
    """Two more authentication failures on top of the one a run made: paused."""

    async def fail() -> None:
        for _ in range(2):
            run = FetchRun(datetime.now(UTC), "", "login refused", auth_failure=True)
            await local.store.record_fetch_run(source_id, run)

    local.call(fail)


def test_add_run_edit_pause_and_remove(
    local: RunningServer, provider: RunningServer, bob: WebClient
) -> None:
    pages = Pages(bob)
    append(provider, REMOTE_USER, message(1))
    page = pages.post("/settings/fetch/save", source_form(provider))
    assert "Source added" in page.text
    (source,) = listed(local)
    assert (source.protocol.value, source.host, source.port, source.username) == (
        "pop3",
        "127.0.0.1",
        provider.port("pop3"),
        REMOTE_USER,
    )
    assert str(source.policy) == "keep" and source.interval == 300
    assert "alice@example.test at 127.0.0.1" in page.text
    # The running fetcher took the new source up at once (no rescan wait).
    wait_for(lambda: inbox_count(local) == 1)
    wait_for(lambda: "1 new" in pages.get("/settings").text)
    assert "Last run: never" not in pages.seen[-1]

    append(provider, REMOTE_USER, message(2))
    append(provider, REMOTE_USER, message(3))
    page = pages.post("/settings/fetch/run", {"id": str(source.id)})
    assert "Fetched: 2 new messages." in page.text
    assert inbox_count(local) == 3

    # Edit: the form shows the settings, never the password; empty keeps it.
    form = pages.get(f"/settings/fetch/edit?id={source.id}")
    assert form.status_code == 200
    assert 'name="password" autocomplete="new-password">' in form.text
    assert f'value="{provider.port("pop3")}"' in form.text
    edited = source_form(provider, id=str(source.id), password="", interval="600")
    assert "Source saved." in pages.post("/settings/fetch/save", edited).text
    (source,) = listed(local)
    assert source.interval == 600
    assert (
        "Fetched: 0 new messages." in pages.post("/settings/fetch/run", {"id": str(source.id)}).text
    )

    # A wrong password: the run's error is shown, then the source pauses.
    wrong = source_form(provider, id=str(source.id), password="not the password")
    pages.post("/settings/fetch/save", wrong)
    page = pages.post("/settings/fetch/run", {"id": str(source.id)})
    assert "Fetching from 127.0.0.1 failed:" in page.text
    assert "Last error" in page.text
    pause(local, source.id)
    page = pages.get("/settings")
    assert "Paused after 3 failed logins" in page.text and ">Resume</button>" in page.text
    page = pages.post("/settings/fetch/resume", {"id": str(source.id)})
    assert "Source resumed." in page.text and "Paused after" not in page.text
    assert not listed(local)[0].paused
    # Paused again; editing it (the right password again) resumes it too.
    pages.post("/settings/fetch/run", {"id": str(source.id)})
    pause(local, source.id)
    assert listed(local)[0].paused
    page = pages.post("/settings/fetch/save", source_form(provider, id=str(source.id)))
    assert "Source saved." in page.text and "Paused after" not in page.text
    assert not listed(local)[0].paused
    append(provider, REMOTE_USER, message(4))
    assert (
        "Fetched: 1 new message." in pages.post("/settings/fetch/run", {"id": str(source.id)}).text
    )
    assert inbox_count(local) == 4

    page = pages.post("/settings/fetch/remove", {"id": str(source.id)})
    assert "Source removed." in page.text and "No other accounts yet." in page.text
    assert listed(local) == []
    for text in pages.seen:
        assert REMOTE_PASSWORD not in text and "not the password" not in text
    assert len(pages.seen) > 20


def test_refused_forms_say_why_and_never_echo_the_password(
    local: RunningServer, provider: RunningServer, bob: WebClient
) -> None:
    token = bob.csrf("/settings/fetch/new")
    cases = [
        ({"interval": "10"}, "the interval must be at least 60 seconds"),
        ({"port": "http"}, "the port is a number"),
        ({"host": "not a host!"}, "not a host name or address"),
        ({"protocol": "pop3", "source_folders": "Archive"}, "POP3 has no folders"),
        ({"remote": "delete-after", "days": "0"}, "not a remote policy"),
        ({"protocol": "imap", "all_folders": "yes", "source_folders": "A"}, "not both"),
        ({"password": ""}, "the password is empty"),
    ]
    for changes, says in cases:
        reply = bob.post(
            "/settings/fetch/save", {"csrf": token, **source_form(provider, **changes)}
        )
        assert reply.status_code == 400, changes
        assert says in reply.text, (changes, reply.text)
        assert REMOTE_PASSWORD not in reply.text
        assert 'value="127.0.0.1"' in reply.text or "host" in changes  # kept for fixing
    assert listed(local) == []
    assert bob.post("/settings/fetch/save", source_form(provider)).status_code == 403
    assert listed(local) == []


def test_another_accounts_source_is_not_found(
    local: RunningServer, provider: RunningServer, bob: WebClient
) -> None:
    token = bob.csrf("/settings/fetch/new")
    assert (
        bob.post("/settings/fetch/save", {"csrf": token, **source_form(provider)}).status_code
        == 303
    )
    (source,) = listed(local)
    with WebClient(local) as alice:
        alice.sign_in("alice@example.test")
        assert alice.get(f"/settings/fetch/edit?id={source.id}").status_code == 404
        token = alice.csrf("/settings")
        for action in ("run", "remove", "resume"):
            reply = alice.post(f"/settings/fetch/{action}", {"csrf": token, "id": str(source.id)})
            assert reply.status_code == 404, action
        hijack = source_form(provider, id=str(source.id), host="127.0.0.2")
        assert alice.post("/settings/fetch/save", {"csrf": token, **hijack}).status_code == 404
        assert "alice@example.test at 127.0.0.1" not in alice.get("/settings").text
    (after,) = listed(local)
    settings = ("host", "port", "username", "password_secret", "interval", "account_id")
    assert all(getattr(after, name) == getattr(source, name) for name in settings)
    assert re.search(r"No other accounts yet", bob.get("/settings").text) is None


def test_all_folders_is_the_cli_all_folders(
    local: RunningServer, provider: RunningServer, bob: WebClient
) -> None:
    """The checkbox is `pillarbox fetch add --all-folders`, and the edit form shows it."""
    token = bob.csrf("/settings/fetch/new")
    imap = source_form(provider, protocol="imap", port=str(provider.port("imap")))
    reply = bob.post("/settings/fetch/save", {"csrf": token, **imap, "all_folders": "yes"})
    assert reply.status_code == 303
    (source,) = listed(local)
    assert source.source_folders == ("*",)
    assert "from all folders" in bob.get("/settings").text
    form = bob.get(f"/settings/fetch/edit?id={source.id}").text
    assert 'name="all_folders" value="yes" checked' in form
    assert 'rows="3" placeholder="INBOX"></textarea>' in form
