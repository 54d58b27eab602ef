"""Sign-in, sessions and sign-out of the webmail, over real HTTP.

Pins: a right password starts a session whose cookie is HttpOnly, SameSite=Lax, not
Secure over plain HTTP and carries only a random id; a wrong one is 401 and starts
nothing; pages without a session go to sign-in and come back; the slow-down after
failed sign-ins is the one IMAP uses, per IP, in both directions; the sign-in form needs
its own token (no login CSRF); `next` never leads off the site; sign-out ends the
session on the server, so the old cookie opens nothing.
"""

from __future__ import annotations

import imaplib
import time

import pytest

from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient, hidden_fields


def test_sign_in_sets_a_safe_session_cookie(web: WebClient) -> None:
    reply = web.sign_in("alice@example.test")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/"
    cookie = next(
        c for c in reply.headers.get_list("set-cookie") if c.startswith("pillarbox_session=")
    )
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "secure" not in attributes  # plain HTTP on loopback: a Secure cookie is lost
    session_id = cookie.split(";")[0].partition("=")[2]
    assert len(session_id) >= 40 and "alice" not in session_id
    assert web.get("/folder?f=INBOX").status_code == 200


def test_each_sign_in_gets_a_new_session_id(server: RunningServer) -> None:
    ids = set()
    for _ in range(2):
        with WebClient(server) as client:
            client.sign_in("alice@example.test")
            ids.add(client.http.cookies["pillarbox_session"])
    assert len(ids) == 2


def test_wrong_password_is_refused(web: WebClient) -> None:
    reply = web.sign_in("alice@example.test", "not the password")
    assert reply.status_code == 401
    assert "Wrong address or password" in reply.text
    assert "pillarbox_session" not in web.http.cookies
    unknown = web.sign_in("nobody@example.test", PASSWORD)
    assert unknown.status_code == 401
    assert "Wrong address or password" in unknown.text  # the same answer


def test_pages_need_a_session_and_come_back_after_sign_in(web: WebClient) -> None:
    reply = web.get("/folder?f=Sent")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/signin?next=%2Ffolder%3Ff%3DSent"
    form = web.get(reply.headers["location"])
    fields = hidden_fields(form.text)
    assert fields["next"] == "/folder?f=Sent"
    data = {**fields, "address": "alice@example.test", "password": PASSWORD}
    signed = web.post("/signin", data)
    assert signed.headers["location"] == "/folder?f=Sent"


def test_next_never_leaves_the_site(web: WebClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        form = web.get("/signin", params={"next": target})
        token = hidden_fields(form.text)["signin_token"]
        data = {
            "signin_token": token,
            "address": "alice@example.test",
            "password": PASSWORD,
            "next": target,
        }
        assert web.post("/signin", data).headers["location"] == "/"


def test_sign_in_form_needs_its_token(web: WebClient) -> None:
    """Another site cannot post the sign-in form: it has neither token nor cookie."""
    data = {"address": "alice@example.test", "password": PASSWORD}
    assert web.post("/signin", data).status_code == 403
    web.get("/signin")  # the cookie alone is not enough either
    assert web.post("/signin", {**data, "signin_token": "guess"}).status_code == 403
    assert "pillarbox_session" not in web.http.cookies


def _imap_failure_seconds(server: RunningServer) -> float:
    imap = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        started = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("alice@example.test", "wrong")
        return time.monotonic() - started
    finally:
        imap.shutdown()


def test_failed_sign_ins_slow_down_imap_and_back(server: RunningServer, web: WebClient) -> None:
    """The throttle is services.auth's, per IP, shared by every protocol: three web
    failures make the next IMAP failure wait base * 2**3; then IMAP failures make the
    next web failure wait longer still (fail_delay 0.05 s in these tests)."""
    for _ in range(3):
        assert web.sign_in("alice@example.test", "wrong").status_code == 401
    assert _imap_failure_seconds(server) >= 0.05 * 2**3
    _imap_failure_seconds(server)
    started = time.monotonic()
    assert web.sign_in("alice@example.test", "wrong").status_code == 401
    assert time.monotonic() - started >= 0.05 * 2**5
    assert web.sign_in("alice@example.test").status_code == 303  # the right one still works


def test_sign_out_ends_the_session_on_the_server(alice: WebClient) -> None:
    old = alice.http.cookies["pillarbox_session"]
    token = alice.csrf("/folder?f=INBOX")
    reply = alice.post("/signout", {"csrf": token})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/signin"
    with WebClient(alice.server) as replay:
        replay.http.cookies.set("pillarbox_session", old)
        assert replay.get("/folder?f=INBOX").status_code == 303
