"""The webmail's HTTP edge: slow and oversized requests, caps, and reverse proxies.

Pins: a client sending its header fields slowly (slowloris) is dropped after
``[web] keep_alive_timeout``, and so is a connection idle after a response; a request
head over the cap and a request target over 8 KiB are refused; requests at once from
one address are capped by ``[limits] max_connections_per_ip`` (503, Retry-After) and
the cap frees up when they end; X-Forwarded-For and X-Forwarded-Proto change nothing
from a peer that is not in ``[web] trusted_proxies`` (no Secure cookie, throttling by
the real peer), and from a trusted proxy they give the Secure cookie, the HTTPS rule
for passwords and the client's own address for the sign-in slow-down.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
import pytest

from pillarbox.web.forwarded import TrustedProxies
from pillarbox.web.limits import MAX_HEAD
from tests.e2e.conftest import PASSWORD, RunningServer, trickle_until_dropped
from tests.web.client import WebClient, hidden_fields


def _connect(server: RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port("http")), timeout=10)


def _closed_within(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes `sock` (reading and discarding what it sends)."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"connection still open after {limit} s")
    return time.monotonic() - started


def test_slow_header_sender_is_dropped(server_factory: Callable[..., RunningServer]) -> None:
    server = server_factory(web={"keep_alive_timeout": 1.0})
    with _connect(server) as sock:
        sock.sendall(b"GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        took = trickle_until_dropped(sock.sendall, b"X")
    assert took < 4.0  # 1 s of timeout, the rest is the trickle noticing


def test_idle_connection_is_closed_after_keep_alive(
    server_factory: Callable[..., RunningServer],
) -> None:
    server = server_factory(web={"keep_alive_timeout": 1.0})
    with _connect(server) as sock:
        sock.sendall(b"GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _closed_within(sock, 5.0) < 3.0


def test_oversized_head_is_refused(server: RunningServer) -> None:
    """Over the cap whether it comes in one piece (checked by the app: 431) or
    trickles in (h11's buffer cap: 431 and closed, or the connection cut)."""
    filler = b"X-Filler: " + b"a" * (MAX_HEAD + 1024) + b"\r\n"
    request = b"GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n" + filler + b"\r\n"
    for piece in (len(request), 4096):
        with _connect(server) as sock:
            reply = b""
            try:
                for start in range(0, len(request), piece):
                    sock.sendall(request[start : start + piece])
                sock.settimeout(10)
                while chunk := sock.recv(65536):
                    reply += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass  # closed before it was all sent: refused too
        assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:80]


def test_long_request_target_is_414(alice: WebClient) -> None:
    reply = alice.get("/folder", params={"f": "x" * 9000})
    assert reply.status_code == 414
    assert alice.get("/folder", params={"f": "INBOX"}).status_code == 200


def _raw_events(server: RunningServer, cookie: str) -> socket.socket:
    sock = _connect(server)
    sock.sendall(
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: pillarbox_session={cookie}"
        "\r\n\r\n".encode()
    )
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


def test_requests_at_once_are_capped_per_address(
    server_factory: Callable[..., RunningServer],
) -> None:
    server = server_factory(limits={"max_connections_per_ip": 3})
    with WebClient(server) as alice:
        alice.sign_in("alice@example.test")
        cookie = alice.http.cookies["pillarbox_session"]
        held = [_raw_events(server, cookie) for _ in range(3)]
        try:
            busy = alice.get("/folder?f=INBOX")
            assert busy.status_code == 503
            assert busy.headers["retry-after"].isdigit()
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while alice.get("/folder?f=INBOX").status_code != 200:
            assert time.monotonic() < deadline, "ended requests still counted"


def _sign_in(
    server: RunningServer, headers: dict[str, str], password: str = PASSWORD
) -> httpx.Response:
    """Sign in as alice with extra request headers; the form's cookie is sent by hand,
    since a Secure one would not go back over plain http."""
    base = f"http://127.0.0.1:{server.port('http')}"
    with httpx.Client(base_url=base, timeout=30) as http:
        form = http.get("/signin", headers=headers)
        token = hidden_fields(form.text)["signin_token"]
        data = {"signin_token": token, "address": "alice@example.test", "password": password}
        return http.post(
            "/signin",
            data=data,
            headers={**headers, "cookie": f"pillarbox_signin={token}"},
        )


def _secure_session_cookie(reply: httpx.Response) -> bool:
    cookies = [c for c in reply.headers.get_list("set-cookie") if "pillarbox_session=" in c]
    assert cookies, reply.status_code
    return "secure" in cookies[0].lower()


def test_forwarded_headers_ignored_without_trusted_proxies(server: RunningServer) -> None:
    spoof = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    reply = _sign_in(server, spoof)
    assert reply.status_code == 303
    assert not _secure_session_cookie(reply)  # not https, whatever the header says
    assert _sign_in(server, spoof, password="wrong").status_code == 401
    auth = server.services.auth
    assert server.call(lambda: auth.ip_delay("127.0.0.1")) > 0  # the failure counts, the peer's
    assert server.call(lambda: auth.ip_delay("203.0.113.7")) == 0


@pytest.fixture
def proxied(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory(
        web={"trusted_proxies": ["127.0.0.1"]},
        auth={"fail_delay": 0.05, "fail_delay_max": 2.0},
    )


def test_trusted_proxy_gives_https_and_the_client(proxied: RunningServer) -> None:
    via_tls = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"}
    reply = _sign_in(proxied, via_tls)
    assert reply.status_code == 303 and _secure_session_cookie(reply)
    # The client is 203.0.113.7, not loopback: over plain http no password is taken.
    clear = _sign_in(proxied, {"x-forwarded-for": "203.0.113.7"})
    assert clear.status_code == 403 and "HTTPS" in clear.text


def test_trusted_proxy_client_is_throttled_by_its_own_address(proxied: RunningServer) -> None:
    # What the client put in front of the list is its own say-so: the proxy's entry wins.
    spoofed = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.1, 203.0.113.8"}
    assert _sign_in(proxied, spoofed, password="wrong").status_code == 401
    auth = proxied.services.auth
    assert proxied.call(lambda: auth.ip_delay("203.0.113.8")) > 0
    assert proxied.call(lambda: auth.ip_delay("198.51.100.1")) == 0
    assert proxied.call(lambda: auth.ip_delay("127.0.0.1")) == 0  # the proxy is not slowed for all


def test_forwarded_for_parsing() -> None:
    proxies = TrustedProxies(lambda *a: None, proxies=["127.0.0.1", "10.0.0.0/8"])  # type: ignore[arg-type,return-value]
    assert proxies.client_from(["203.0.113.1"]) == "203.0.113.1"
    assert proxies.client_from(["198.51.100.1", "203.0.113.1", "10.1.2.3"]) == "203.0.113.1"
    assert proxies.client_from(["[2001:db8::1]:443"]) == "2001:db8::1"
    assert proxies.client_from(["203.0.113.1:1234"]) == "203.0.113.1"
    assert proxies.client_from(["garbage"]) is None
    assert proxies.client_from(["garbage", "203.0.113.1"]) == "203.0.113.1"
    assert proxies.client_from(["10.0.0.1"]) == "10.0.0.1"  # only proxies: the leftmost
    assert proxies.client_from([]) is None
