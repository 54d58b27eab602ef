"""Reading HTML mail in the real browser: inline images shown, remote ones only on request.

A message delivered over SMTP holds an inline ``cid:`` image (RFC 2392) and a remote
image served by an HTTP server this test runs on loopback, which records every request.
Pins, in Debian's Chromium: the inline image is decoded and drawn inside the sandboxed
frame (naturalWidth > 0), with no request of its own (it is a data: URI); the remote
image is not requested when the message opens, nor while it is read; after "Show them"
it is requested and drawn; no script runs and nothing leaves the machine.
"""

from __future__ import annotations

import base64
import smtplib
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.e2e.conftest import RunningServer


def png(width: int, height: int) -> bytes:
    """A red PNG of that size, made here (RFC 2083: signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# Their widths tell which one was drawn.
INLINE_PNG = png(2, 2)
REMOTE_PNG = png(3, 1)


class ImageServer:
    """An HTTP server on 127.0.0.1 that answers every GET with `REMOTE_PNG` and keeps
    the paths asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(REMOTE_PNG)))
                self.end_headers()
                self.wfile.write(REMOTE_PNG)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def images() -> Iterator[ImageServer]:
    with ImageServer() as server:
        yield server


def deliver(server: RunningServer, remote_url: str) -> None:
    html = (
        "<p>Spring sale</p>"
        '<p><img src="cid:logo.1@shop.test" alt="logo" width="40" height="40"></p>'
        f'<p><img src="{remote_url}" alt="remote" width="60" height="20"></p>'
        "<script>window.pwned = 1</script>"
    )
    data = (
        "From: Shop <news@shop.test>\r\nTo: alice@example.test\r\nSubject: spring sale\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n"
        "--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
        "--rel\r\nContent-Type: image/png\r\nContent-ID: <logo.1@shop.test>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(INLINE_PNG).decode()}\r\n--rel--\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.test") as s:
        s.sendmail("news@shop.test", ["alice@example.test"], data)


def natural_width(page: Page, selector: str) -> int:
    image = page.frame_locator("iframe.html-body").locator(selector)
    expect(image).to_be_attached()
    width = image.evaluate("img => img.complete ? img.naturalWidth : -1")
    return int(width)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_inline_shown_remote_only_on_request(
    server: RunningServer,
    images: ImageServer,
    sign_in: Callable[..., Page],
    outside_requests: list[str],
) -> None:
    remote_url = f"http://127.0.0.1:{images.port}/pixel.png"
    deliver(server, remote_url)
    page = sign_in("alice@example.test")
    page.click("text=spring sale")
    page.wait_for_url("**/read?*")
    expect(page.locator(".images-bar")).to_contain_text("Images from the internet are hidden.")

    assert wait_for(lambda: natural_width(page, "img[alt=logo]") == 2)
    # The remote image has no source in the frame: nothing was asked of its server.
    frame = page.frame_locator("iframe.html-body")
    assert frame.locator("img[alt=remote]").get_attribute("src") is None
    assert images.paths == []
    screenshot(page, "message-images-hidden")

    page.click("text=Show them")
    page.wait_for_url("**images=1*")
    expect(page.locator(".images-bar")).to_have_count(0)
    assert wait_for(lambda: images.paths == ["/pixel.png"])
    assert wait_for(lambda: natural_width(page, "img[alt=remote]") == 3)
    assert natural_width(page, "img[alt=logo]") == 2
    assert page.evaluate("() => window.pwned") is None
    assert frame.locator("script").count() == 0
    assert outside_requests == []


def test_message_fits_a_phone_in_dark_mode(
    server: RunningServer, images: ImageServer, sign_in: Callable[..., Page]
) -> None:
    """The images bar and the frame fit 360 px without sideways scrolling, in dark mode."""
    deliver(server, f"http://127.0.0.1:{images.port}/pixel.png")
    page = sign_in(
        "alice@example.test", viewport={"width": 360, "height": 740}, color_scheme="dark"
    )
    page.click("text=spring sale")
    page.wait_for_url("**/read?*")
    expect(page.locator(".images-bar button")).to_be_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    screenshot(page, "message-phone-dark")
    assert images.paths == []
