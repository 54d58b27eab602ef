"""An expired session goes back to sign-in, and from there to where the person was.

Pins: a page asked for after the session expired redirects to sign-in with the page as
``next``, and signing in again lands on it; a form sent after expiry (a message being
written) is not acted on, and sign-in leads back to the page the form was on (its
Referer: only a path on this site), where the browser puts the text back (app.js;
the browser test covers that part); a live page's event stream needs the session too;
sign-in failures over the webmail and over IMAP share one per-address slow-down, and
the per-account throttle holds back guesses from new addresses whichever door they use.
"""

from __future__ import annotations

import contextlib
import html
import imaplib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx

from pillarbox.web.sessions import id_hash
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import WebClient, hidden_fields, inbox_count


def _expire(server: RunningServer, client: WebClient) -> None:
    """Age the browser's session past its idle limit, as a night away would."""
    sessions = server.app.web.context.sessions
    session_id = client.http.cookies["pillarbox_session"]

    async def age() -> None:
        session = await sessions.peek(session_id)
        assert session is not None
        session.last_seen -= sessions.idle + 1  # in memory (no table)
        if sessions.table is not None:  # in the store: as if last used that long ago
            await sessions.table.touch(id_hash(session_id), time.time() - sessions.idle - 1)

    server.call(age)


def _next_of(reply: httpx.Response) -> str:
    assert reply.status_code == 303, reply.status_code
    location = urlsplit(reply.headers["location"])
    assert location.path == "/signin"
    return parse_qs(location.query)["next"][0]


def _sign_in_to(client: WebClient, next_url: str) -> httpx.Response:
    form = client.get("/signin", params={"next": next_url})
    fields = {k: html.unescape(v) for k, v in hidden_fields(form.text).items()}
    assert fields["next"] == next_url  # the form carries it on
    data = {**fields, "address": "alice@example.test", "password": PASSWORD}
    return client.post("/signin", data)


def test_page_after_expiry_returns_there(server: RunningServer, alice: WebClient) -> None:
    assert alice.get("/folder?f=Sent").status_code == 200
    _expire(server, alice)
    target = _next_of(alice.get("/folder?f=Sent&page=1"))
    assert target == "/folder?f=Sent&page=1"
    assert "Your session has ended" in alice.get("/signin", params={"next": target}).text
    back = _sign_in_to(alice, target)
    assert back.status_code == 303 and back.headers["location"] == target
    assert alice.get(target).status_code == 200


def test_first_sign_in_says_nothing_of_an_ended_session(web: WebClient) -> None:
    assert "session has ended" not in web.get("/signin").text


def test_form_sent_after_expiry_returns_to_its_page(
    server: RunningServer, alice: WebClient
) -> None:
    page = "/compose?to=bob%40example.test"
    token = alice.csrf(page)
    _expire(server, alice)
    message = {"csrf": token, "to": "bob@example.test", "subject": "late", "body": "kept?"}
    referer = {"referer": alice.base + page}
    reply = alice.post("/compose", message, headers=referer)
    target = _next_of(reply)
    assert target == page  # back to the editor, not the start page
    # nothing sent on an expired session's token
    assert inbox_count(server, "bob@example.test") == 0
    back = _sign_in_to(alice, target)
    assert back.headers["location"] == page
    assert alice.get(page).status_code == 200


def test_form_after_expiry_from_elsewhere_goes_home(
    server: RunningServer, alice: WebClient
) -> None:
    token = alice.csrf()
    _expire(server, alice)
    data = {"csrf": token, "to": "bob@example.test", "subject": "x", "body": "x"}
    for referer in ("https://evil.example/compose", "", "http://127.0.0.1:1//evil"):
        reply = alice.post("/compose", data, headers={"referer": referer} if referer else {})
        assert _next_of(reply) == "/"


def test_event_stream_needs_a_live_session(server: RunningServer, alice: WebClient) -> None:
    _expire(server, alice)
    reply = alice.get("/events")
    assert _next_of(reply) == "/events"  # the page's script sends the reader to sign-in


def test_web_and_imap_share_the_per_address_slow_down(
    server_factory: Callable[..., RunningServer],
) -> None:
    server = server_factory(auth={"fail_delay": 0.4, "fail_delay_max": 5.0})
    for _ in range(2):  # two failed IMAP logins from 127.0.0.1: the next waits 0.8 s
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
        try:
            with contextlib.suppress(imaplib.IMAP4.error):
                imap.login("alice@example.test", "wrong")
        finally:
            imap.shutdown()
    with WebClient(server) as web:
        started = time.monotonic()
        assert web.sign_in("alice@example.test", "wrong").status_code == 401
        assert time.monotonic() - started >= 0.8 * 2  # the third failure waits 1.6 s
        # and the webmail's failure counts for IMAP in turn
        imap = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
        try:
            started = time.monotonic()
            with contextlib.suppress(imaplib.IMAP4.error):
                imap.login("alice@example.test", "wrong")
            assert time.monotonic() - started >= 3.2  # the fourth: 0.4 * 2**3
        finally:
            imap.shutdown()


def test_account_throttle_holds_back_web_guesses_from_new_addresses(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Password spraying through the webmail from many addresses (behind a trusted
    proxy) meets the same per-account spacing as over IMAP."""
    server = server_factory(
        web={"trusted_proxies": ["127.0.0.1"]},
        auth={
            "fail_delay": 0.0,
            "account_fail_free": 2,
            "account_fail_delay": 2.0,
            "account_fail_delay_max": 10.0,
        },
    )
    base = f"http://127.0.0.1:{server.port('http')}"

    def attempt(ip: str) -> float:
        headers = {"x-forwarded-for": ip, "x-forwarded-proto": "https"}
        with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
            token = hidden_fields(http.get("/signin").text)["signin_token"]
            data = {"signin_token": token, "address": "alice@example.test", "password": "x"}
            started = time.monotonic()
            cookie = {"cookie": f"pillarbox_signin={token}"}
            assert http.post("/signin", data=data, headers=cookie).status_code == 401
            return time.monotonic() - started

    attempt("203.0.113.1")
    attempt("203.0.113.2")  # the free failures are used up
    # Two guesses at once from two more addresses: they take turns, 2 s apart, where the
    # per-address delay alone (off here) would let both through at once.
    with ThreadPoolExecutor(2) as pool:
        took = list(pool.map(attempt, ["203.0.113.3", "203.0.113.4"]))
    assert max(took) >= 1.5, took
