"""HTML mail is cleaned and framed; attachments download and never render.

Pins: hostile HTML bodies (script elements, event handlers, javascript:/data:/vbscript:
URLs, SVG script, forms, meta refresh, base, nested frames, CSS url() beacons, remote
images) lose every active part in what the body URL serves; that URL carries a strict
Content-Security-Policy (no script source, nothing loadable, only our pages may frame
it, sandboxed); the message page frames it with sandbox and neither allow-scripts nor
allow-same-origin; attachments come as application/octet-stream with
``Content-Disposition: attachment`` and a file name that cannot escape a folder or a
header, decoded from base64.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote

import pytest

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient, append

HOSTILE = [
    "<script>window.pwned=1</script><p>hello</p>",
    '<img src="x" onerror="window.pwned=1"><p>hello</p>',
    '<a href="javascript:window.pwned=1">hello</a>',
    '<a href="vbscript:msgbox(1)">hello</a><a href="data:text/html,<script>1</script>">d</a>',
    '<svg><script>window.pwned=1</script></svg><p onclick="window.pwned=1">hello</p>',
    '<form action="https://evil.example/"><input name=p></form><p>hello</p>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/"><p>hello</p>',
    '<base href="https://evil.example/"><iframe srcdoc="<script>1</script>"></iframe>hello',
    '<p style="background:url(https://evil.example/beacon)">hello</p>',
    '<img src="https://evil.example/track.gif"><p>hello</p>',
    '<div><style>@import "https://evil.example/x.css";</style>hello</div>',
    "<<script>script>window.pwned=1<</script>/script><p>hello</p>",
]
ACTIVE = re.compile(
    r"<script|onerror|onclick|javascript:|vbscript:|data:text|<form|<meta|<base|<iframe"
    r"|evil\.example|<style|<svg",
    re.IGNORECASE,
)


def _html_message(markup: str) -> bytes:
    return (
        b"From: mallory@other.test\r\nTo: alice@example.test\r\nSubject: html\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + markup.encode()
        + b"\r\n--b--\r\n"
    )


def _where(server: RunningServer, uid: int) -> str:
    account = server.call(lambda: server.store.get_account("alice@example.test"))
    inbox = server.call(lambda: server.store.get_mailbox(account.id, "INBOX"))
    return f"f=INBOX&v={inbox.uidvalidity}&uid={uid}"


@pytest.mark.parametrize("markup", HOSTILE)
def test_hostile_html_is_cleaned_and_framed(
    server: RunningServer, alice: WebClient, markup: str
) -> None:
    uid = append(server, "alice@example.test", _html_message(markup))
    page = alice.get(f"/read?{_where(server, uid)}")
    assert page.status_code == 200
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    tag = frame.group(0)
    assert 'sandbox="' in tag
    assert "allow-scripts" not in tag and "allow-same-origin" not in tag
    assert "pwned" not in page.text  # the markup never reaches the page itself
    src = re.search(r'src="([^"]+)"', tag)
    assert src is not None
    body = alice.get(src.group(1).replace("&amp;", "&"))
    assert body.status_code == 200
    shown = body.text.partition("<body>")[2]
    assert "hello" in shown
    assert not ACTIVE.search(shown), shown
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # falls back to default-src 'none'
    assert "frame-ancestors 'self'" in csp and "sandbox" in csp
    assert "img-src data:" in csp


ATTACHED = base64.b64encode(b"%PDF-1.4 not really\n" * 10)


def _with_attachment(name_param: str) -> bytes:
    return (
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: files\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: text/html; name=x.html\r\nContent-Disposition: attachment; "
        + name_param.encode()
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + ATTACHED
        + b"\r\n--b--\r\n"
    )


@pytest.mark.parametrize(
    ("name_param", "saved"),
    [
        ('filename="report.pdf"', "report.pdf"),
        ('filename="../../.bashrc"', "bashrc"),
        (r'filename="evil\"; x=y.html"', "evil_; x=y.html"),
        (r'filename="C:\\Windows\\win.ini"', "win.ini"),
        ("filename*=utf-8''..%2F..%2Fx%0D%0AX-Evil%3A%201.txt", "x_X-Evil_ 1.txt"),
        ("filename*=utf-8''%C3%BCber%09%E2%80%AEcod.exe", "über_cod.exe"),
        ('filename="CON"', "_CON"),
        ('filename="..."', "attachment.html"),
    ],
)
def test_attachment_downloads_safely(
    server: RunningServer, alice: WebClient, name_param: str, saved: str
) -> None:
    uid = append(server, "alice@example.test", _with_attachment(name_param))
    page = alice.get(f"/read?{_where(server, uid)}").text
    assert "see attached" in page
    link = re.search(r'href="(/read/attachment\?[^"]+)"', page)
    assert link is not None
    reply = alice.get(link.group(1).replace("&amp;", "&"))
    assert reply.status_code == 200
    assert reply.content == base64.b64decode(ATTACHED)
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["x-content-type-options"] == "nosniff"
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert f"filename*=UTF-8''{quote(saved, safe='')}" in disposition
    assert "/" not in disposition.split("filename*=")[1]
    assert disposition.isascii()
    assert "\r" not in disposition and "\n" not in disposition


def test_missing_part_is_not_found(server: RunningServer, alice: WebClient) -> None:
    uid = append(server, "alice@example.test", _with_attachment('filename="a.txt"'))
    where = _where(server, uid)
    assert alice.get(f"/read/attachment?{where}&part=9").status_code == 404
    assert alice.get(f"/read/attachment?{where}&part=2.x").status_code == 404
