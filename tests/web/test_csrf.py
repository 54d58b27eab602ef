"""Every change needs the session's CSRF token and a same-site request.

Pins: sending mail and signing out without the token, with another session's token,
or from another origin are refused with 403 and change nothing (this host under https,
as through a TLS proxy, is not another origin); changes are POST only
(a GET to a change URL does nothing); every page carries the security headers.
"""

from __future__ import annotations

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, inbox_count

MESSAGE = {"to": "bob@example.test", "subject": "csrf", "body": "should not be sent"}


def test_send_without_token_is_refused(server: RunningServer, alice: WebClient) -> None:
    assert alice.post("/compose", MESSAGE).status_code == 403
    assert alice.post("/compose", {**MESSAGE, "csrf": "x" * 43}).status_code == 403
    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        other = bob.csrf()
    assert alice.post("/compose", {**MESSAGE, "csrf": other}).status_code == 403
    assert inbox_count(server, "bob@example.test") == 0


def test_cross_site_post_is_refused_even_with_token(
    server: RunningServer, alice: WebClient
) -> None:
    token = alice.csrf()
    evil = {"origin": "https://evil.example"}
    assert alice.post("/compose", {**MESSAGE, "csrf": token}, headers=evil).status_code == 403
    site = {"sec-fetch-site": "cross-site"}
    assert alice.post("/compose", {**MESSAGE, "csrf": token}, headers=site).status_code == 403
    assert inbox_count(server, "bob@example.test") == 0
    same = {"origin": alice.base.replace("http:", "https:"), "sec-fetch-site": "same-origin"}
    assert alice.post("/compose", {**MESSAGE, "csrf": token}, headers=same).status_code == 303
    # the same host behind a TLS proxy is this site
    assert inbox_count(server, "bob@example.test") == 1


def test_sign_out_needs_the_token(alice: WebClient) -> None:
    assert alice.post("/signout", {}).status_code == 403
    assert alice.get("/signout").status_code == 405
    assert alice.get("/folder?f=INBOX").status_code == 200  # still signed in


def test_security_headers_on_every_page(web: WebClient, alice: WebClient) -> None:
    pages = [web.get("/signin"), web.get("/"), alice.get("/folder?f=INBOX")]
    pages += [alice.get("/compose"), alice.get("/nothing-here"), alice.get("/static/style.css")]
    for reply in pages:
        csp = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "same-origin"
