"""Request bodies are capped before any page reads them.

Pins: an anonymous sign-in POST larger than a few kilobytes is 413 at once, before any
of its body is read, when it declares its length, and refused (413 or the connection
closed) when it streams it chunked, and the server keeps serving; sending mail larger
than the SMTP size limit is refused, and one under it goes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient


def test_large_sign_in_body_is_refused(web: WebClient) -> None:
    # Only the header is sent: the 413 must come at once, without reading any body.
    with socket.create_connection(("127.0.0.1", web.server.port("http")), timeout=10) as sock:
        sock.sendall(
            b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        head = sock.recv(65536).split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 413")
    assert b"x-content-type-options: nosniff" in head
    assert b"connection: close" in head  # the unread body ends the connection

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"password=" + b"x" * 1024

    # The server answers before the body ends and closes the connection; the client may
    # see the 413 or only the close, depending on when its writes fail.
    try:
        streamed = web.http.post(
            "/signin",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    except httpx.RemoteProtocolError:
        pass
    else:
        assert streamed.status_code == 413
    assert web.get("/signin").status_code == 200


def test_message_size_limit_applies(server_factory: object) -> None:
    assert callable(server_factory)
    server: RunningServer = server_factory(smtp={"max_message_size": 20_000})
    with WebClient(server) as alice:
        alice.sign_in("alice@example.test")
        token = alice.csrf()
        form = {"to": "bob@example.test", "cc": "", "bcc": "", "subject": "big", "csrf": token}
        too_big = alice.post("/compose", {**form, "body": "y" * 30_000})
        assert too_big.status_code == 400
        assert "larger than the limit of 20000 bytes" in too_big.text
        huge = alice.post("/compose", {**form, "body": "y" * 100_000})
        assert huge.status_code == 413
        small = alice.post("/compose", {**form, "body": "y" * 1_000})
        assert small.status_code == 303
