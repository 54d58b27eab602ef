"""Remote and inline images in HTML mail, and the attachment list, over real HTTP.

Mail is delivered over SMTP (smtplib to the MX listener). Pins: a remote image is not in
the frame and the frame's CSP allows only data: images, with a bar saying so and
offering "Show them" and "Always show from <sender>"; "Show them" (a query flag on the
page and the frame URL) puts the source back and widens only img-src (still no script);
"Always show" is a POST with the CSRF token that makes every message from that sender
(any letter case) show images, for this account only; a message without remote images
has no bar; a cid: image (RFC 2392) is in the frame as a data: URI with its exact bytes
and is not listed again as an attachment unless it also says Content-Disposition:
attachment; an image with a Content-ID the HTML does not use is listed; attachments show
their size in human units.
"""

from __future__ import annotations

import base64
import re
import smtplib

import httpx

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, hidden_fields

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)
REMOTE = "http://127.0.0.1:9/pixel.gif"  # never fetched by these tests: only looked at


def html_mail(sender: str, subject: str, html: str, *, image_disposition: str = "") -> bytes:
    disposition = f"Content-Disposition: {image_disposition}\r\n" if image_disposition else ""
    return (
        f"From: Shop <{sender}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
        "--outer\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n"
        "--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
        "--rel\r\nContent-Type: image/png; name=logo.png\r\nContent-ID: <logo.1@shop.test>\r\n"
        f"{disposition}Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(PNG).decode()}\r\n"
        "--rel--\r\n"
        "--outer\r\nContent-Type: application/pdf; name=terms.pdf\r\n"
        "Content-Disposition: attachment; filename=terms.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.encodebytes(b'%PDF' + bytes(3000)).decode()}\r\n"
        "--outer--\r\n"
    ).encode()


def deliver(server: RunningServer, data: bytes, to: str = "alice@example.test") -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), local_hostname="client.test") as s:
        s.sendmail("shop@shop.test", [to], data)


def newest_link(client: WebClient) -> str:
    folder = client.get("/folder?f=INBOX").text
    link = re.search(r'href="(/read\?[^"]+)"', folder)
    assert link, folder
    return link.group(1).replace("&amp;", "&")


def frame(client: WebClient, page: str) -> tuple[str, httpx.Response]:
    found = re.search(r'<iframe[^>]*src="([^"]+)"', page)
    assert found, page
    url = found.group(1).replace("&amp;", "&")
    body = client.get(url)
    assert body.status_code == 200
    return url, body


BODY = f'<p>Hello</p><img src="cid:logo.1@shop.test" alt="logo"><img src="{REMOTE}">'


def test_remote_images_blocked_until_shown(server: RunningServer, alice: WebClient) -> None:
    deliver(server, html_mail("news@shop.test", "spring sale", BODY))
    link = newest_link(alice)
    page = alice.get(link).text
    assert "Images from the internet are hidden." in page
    assert "Always show from news@shop.test" in page
    url, body = frame(alice, page)
    assert "images=1" not in url
    assert REMOTE not in body.text and "127.0.0.1:9" not in body.text
    csp = body.headers["content-security-policy"]
    assert "img-src data:;" in csp and "http:" not in csp
    # The inline image is in the frame, as its own bytes.
    inline = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="logo">', body.text)
    assert inline and base64.b64decode(inline.group(1)) == PNG

    show = re.search(r'<a class="show-images" href="([^"]+)"', page)
    assert show
    shown = alice.get(show.group(1).replace("&amp;", "&")).text
    assert "Images from the internet are hidden." not in shown
    url, body = frame(alice, shown)
    assert "images=1" in url
    assert f'<img src="{REMOTE}">' in body.text
    csp = body.headers["content-security-policy"]
    assert "img-src data: https: http:;" in csp
    assert "script-src" not in csp and "default-src 'none'" in csp and "sandbox" in csp
    # Shown for this message only: opening it again blocks them again.
    assert "Images from the internet are hidden." in alice.get(link).text


def test_always_show_from_sender(server: RunningServer, alice: WebClient) -> None:
    deliver(server, html_mail("news@shop.test", "first", BODY))
    page = alice.get(newest_link(alice)).text
    fields = hidden_fields(page.split('action="/read/images"', 1)[1])
    assert alice.post("/read/images", {**fields, "csrf": "wrong"}).status_code == 403
    assert alice.post("/read/images", {**fields, "uid": "999"}).status_code == 404
    reply = alice.post("/read/images", fields)
    assert reply.status_code == 303
    again = alice.get(reply.headers["location"]).text
    assert "Images from the internet are hidden." not in again
    assert f'<img src="{REMOTE}">' in frame(alice, again)[1].text

    deliver(server, html_mail("NEWS@Shop.Test", "second", BODY))
    later = alice.get(newest_link(alice)).text
    assert "second" in later and "Images from the internet are hidden." not in later
    deliver(server, html_mail("other@shop.test", "third", BODY))
    other = alice.get(newest_link(alice)).text
    assert "third" in other and "Images from the internet are hidden." in other

    # Trust can be taken back from a message of that sender.
    assert "Images from NEWS@Shop.Test are always shown." in later
    fields = hidden_fields(later.split('action="/read/images"', 1)[1])
    assert fields["forget"] == "1"
    back = alice.get(alice.post("/read/images", fields).headers["location"]).text
    assert "Images from the internet are hidden." in back

    # bob's trust is his own.
    deliver(server, html_mail("news@shop.test", "to bob", BODY), to="bob@example.test")
    with WebClient(server) as bob:
        bob.sign_in("bob@example.test")
        assert "Images from the internet are hidden." in bob.get(newest_link(bob)).text


def test_no_bar_without_remote_images(server: RunningServer, alice: WebClient) -> None:
    deliver(
        server, html_mail("news@shop.test", "quiet", '<p>Hi</p><img src="cid:logo.1@shop.test">')
    )
    page = alice.get(newest_link(alice)).text
    assert "quiet" in page and "Images from the internet" not in page


def attachment_names(page: str) -> list[str]:
    listed = page.partition('<ul class="attachments">')[2].partition("</ul>")[0]
    return re.findall(r"download>([^<]+)</a>", listed)


def test_inline_parts_are_not_listed_twice(server: RunningServer, alice: WebClient) -> None:
    deliver(server, html_mail("news@shop.test", "inline only", BODY))
    page = alice.get(newest_link(alice)).text
    assert attachment_names(page) == ["terms.pdf"]
    assert re.search(r"terms\.pdf</a>\s*<small>2\.\d KB</small>", page)

    deliver(
        server,
        html_mail("news@shop.test", "also a file", BODY, image_disposition="attachment"),
    )
    page = alice.get(newest_link(alice)).text
    assert attachment_names(page) == ["logo.png", "terms.pdf"]
    assert "data:image/png" in frame(alice, page)[1].text  # and still shown inline

    deliver(server, html_mail("news@shop.test", "unused", "<p>no image named</p>"))
    page = alice.get(newest_link(alice)).text
    assert attachment_names(page) == ["logo.png", "terms.pdf"]
