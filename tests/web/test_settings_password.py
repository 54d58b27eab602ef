"""Changing the password in Settings.

Pins: the change needs the current password, checked by the sign-in service (a wrong
one is refused, changes nothing and counts in the same per-IP slow-down as a failed
IMAP LOGIN); the new one must be typed twice the same and pass the account password
policy (`pillarbox user add`'s); after the change IMAP LOGIN works with the new password
and not with the old, the account's other webmail sessions are signed out while this
one stays, and the page says so; the form needs the CSRF token.
"""

from __future__ import annotations

import imaplib

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient

NEW = "a much better passphrase"


def imap_login_works(server: RunningServer, user: str, password: str) -> bool:
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        imap.login(user, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        imap.shutdown()
    return True


def change(client: WebClient, current: str, new: str, again: str | None = None) -> object:
    token = client.csrf("/settings")
    data = {"csrf": token, "current": current, "new": new, "again": new if again is None else again}
    return client.post("/settings/password", data)


def test_password_change_reaches_imap_and_ends_other_sessions(
    server: RunningServer, alice: WebClient
) -> None:
    with WebClient(server) as other:
        assert other.sign_in("alice@example.test").status_code == 303
        assert other.get("/settings").status_code == 200
        reply = change(alice, PASSWORD, NEW)
        assert reply.status_code == 303, reply.text
        page = alice.get(reply.headers["location"])
        assert page.status_code == 200
        assert "Password changed" in page.text
        assert "other webmail sessions have been signed out" in page.text
        # The other browser is signed out; this one is not.
        assert other.get("/settings").status_code == 303
        assert other.get("/settings").headers["location"].startswith("/signin")
        assert alice.get("/folder?f=INBOX").status_code == 200
    assert imap_login_works(server, "alice@example.test", NEW)
    assert not imap_login_works(server, "alice@example.test", PASSWORD)
    with WebClient(server) as again:
        assert again.sign_in("alice@example.test", NEW).status_code == 303


def test_wrong_current_password_is_refused_and_slows_down(
    server: RunningServer, alice: WebClient
) -> None:
    auth = server.services.auth
    assert server.call(lambda: auth.ip_delay("127.0.0.1")) == 0.0
    reply = change(alice, "not my password", NEW)
    assert reply.status_code == 401
    assert "The current password is wrong." in reply.text
    assert "Password changed" not in reply.text
    # The failure counts where a failed sign-in or IMAP LOGIN from here counts.
    assert server.call(lambda: auth.ip_delay("127.0.0.1")) > 0.0
    assert imap_login_works(server, "alice@example.test", PASSWORD)
    assert not imap_login_works(server, "alice@example.test", NEW)


@pytest.mark.parametrize(
    ("new", "again", "says"),
    [
        ("short1", None, "too short"),  # the account policy's words
        ("password", None, "too weak"),
        (NEW, NEW + "x", "The two new passwords differ."),
        (PASSWORD, None, "same as the current one"),
    ],
)
def test_new_password_must_pass_the_policy(
    server: RunningServer, alice: WebClient, new: str, again: str | None, says: str
) -> None:
    reply = change(alice, PASSWORD, new, again)
    assert reply.status_code == 400
    assert says in reply.text
    assert imap_login_works(server, "alice@example.test", PASSWORD)


def test_password_change_needs_the_token(server: RunningServer, alice: WebClient) -> None:
    data = {"current": PASSWORD, "new": NEW, "again": NEW}
    assert alice.post("/settings/password", data).status_code == 403
    assert alice.post("/settings/password", {**data, "csrf": "x" * 43}).status_code == 403
    assert imap_login_works(server, "alice@example.test", PASSWORD)
