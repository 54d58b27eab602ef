"""The webmail's pure parts, without a server: file names, HTML cleaning, linking,
sessions.

Pins: `safe_filename` never yields a path, a control or bidi character, a hidden or
reserved name, or an empty or overlong name; `clean_html` removes every active part
of a corpus of hostile markup and keeps the text, and counts the remote images it
blocked;
`linkify` escapes everything and links only http(s) and mailto; sessions expire when
idle and at their lifetime, are evicted oldest first at the cap, and end at once.
"""

from __future__ import annotations

import re
import time

import pytest
from starlette.requests import Request
from starlette.responses import Response

from pillarbox.model import Account
from pillarbox.web.context import set_session_cookie
from pillarbox.web.filenames import MAX_NAME, content_disposition, safe_filename
from pillarbox.web.html_clean import clean_html, linkify
from pillarbox.web.sessions import SessionStore


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "a\r\nSet-Cookie: x=1",
        "\u202ecod.exe",
        ".hidden",
        "nul.txt",
        "",
        " . . ",
        "x" * 500 + ".pdf",
        "名前\x00.txt",
    ],
)
def test_safe_filename(name: str) -> None:
    safe = safe_filename(name)
    assert safe and len(safe) <= MAX_NAME
    assert not re.search(r"[/\\\x00-\x1f\x7f\u202e]", safe)
    assert not safe.startswith(".") and not safe.endswith((".", " "))
    assert not re.match(r"(?i)^(con|prn|aux|nul|com\d|lpt\d)(\.|$)", safe)
    header = content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header


def test_long_name_keeps_its_extension() -> None:
    assert safe_filename("x" * 500 + ".pdf").endswith(".pdf")


HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg onload=alert(1)>",
    "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example/"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    "<object data=https://evil.example/x.swf></object>",
    "<embed src=https://evil.example/x.swf>",
    '<form action="https://evil.example/"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<base href="https://evil.example/">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<style>*{background:url(https://evil.example/beacon)}</style>",
    '<div style="background-image:url(https://evil.example/b)">x</div>',
    '<div style="width:expression(alert(1))">x</div>',
    '<img src="https://evil.example/track.gif" width=1 height=1>',
    '<img srcset="https://evil.example/a.png 1x">',
    '<video poster="https://evil.example/p.png"></video>',
    '<table background="https://evil.example/bg.png"><tr><td>x</td></tr></table>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<!--<img src=x onerror=alert(1)>-->",
    '<a href="https://ok.example/" onmouseover="alert(1)">x</a>',
    "<details open ontoggle=alert(1)>",
    '<input autofocus onfocus="alert(1)">',
    "<isindex action=javascript:alert(1) type=image>",
    '<xss style="behavior:url(x.htc)">',
    "<template><script>alert(1)</script></template>",
    '<p style="position:fixed;top:0;left:0;width:100%">overlay</p>',
    "<<script>script>alert(1)<</script>/script>",
    "<scr<script>ipt>alert(1)</script>",
    '<a href="https://ok.example/" target="_top">x</a>',
]
ACTIVE = re.compile(
    r"<script|<iframe|<object|<embed|<form|<input|<meta|<base|<link|<style|<svg|<math"
    r"|<video|<template|\son\w+=|javascript:|vbscript:|data:|evil\.example|expression\("
    r"|behavior|position|srcset|_top|background=",
    re.IGNORECASE,
)


@pytest.mark.parametrize("markup", HOSTILE)
def test_hostile_markup_is_inert(markup: str) -> None:
    cleaned = clean_html(f"<p>before</p>{markup}<p>after</p>").markup
    assert not ACTIVE.search(cleaned), cleaned
    assert "before" in cleaned


def test_cleaning_keeps_formatting_and_counts_images() -> None:
    cleaned = clean_html(
        '<p style="color:red">a <b>b</b> <a href="https://ok.example/">c</a></p>'
        '<img src="https://t.example/1.gif" alt="logo"><img src="cid:x">'
    )
    assert '<p style="color:red">' in cleaned.markup and "<b>b</b>" in cleaned.markup
    assert 'href="https://ok.example/"' in cleaned.markup
    assert 'target="_blank"' in cleaned.markup and "noopener" in cleaned.markup
    assert 'alt="logo"' in cleaned.markup and "src=" not in cleaned.markup
    assert cleaned.blocked_images == 1  # the remote one (cid: is no allowed scheme)


def test_linkify() -> None:
    html = str(linkify('<b>x</b> https://a.example/p?q=1&r="2" (see http://b.example/).'))
    assert html.startswith("&lt;b&gt;x&lt;/b&gt; ")
    assert '<a href="https://a.example/p?q=1&amp;r=" target="_blank"' in html
    assert '<a href="http://b.example/" target="_blank"' in html
    assert str(linkify("javascript:alert(1)")) == "javascript:alert(1)"  # text, no link
    assert "<a" not in str(linkify("ftp://x.example/ file://etc/passwd https://"))


def _account() -> Account:
    return Account(id=1, address="a@example.test", domain_id=1, password_hash="x")


async def test_sessions_expire_and_end() -> None:
    store = SessionStore(idle=0.2, lifetime=60)
    session = await store.create(_account())
    assert await store.get(session.id) is session
    assert await store.get("not-a-session") is None and await store.get(None) is None
    time.sleep(0.3)  # the idle time passing is what is under test
    assert await store.get(session.id) is None
    again = await store.create(_account())
    await store.end(again.id)
    assert await store.get(again.id) is None
    short = SessionStore(idle=60, lifetime=0.2)
    kept = await short.create(_account())
    time.sleep(0.3)
    assert await short.get(kept.id) is None


async def test_sessions_are_capped_oldest_first() -> None:
    store = SessionStore(cap=3)
    first, second = await store.create(_account()), await store.create(_account())
    await store.get(first.id)  # used: now the newest
    await store.create(_account())
    await store.create(_account())
    assert len(store) == 3
    assert await store.get(second.id) is None and await store.get(first.id) is first
    assert first.id != second.id and first.csrf != second.csrf


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_session_cookie_is_secure_over_tls(scheme: str, secure: bool) -> None:
    """The cookie the server sets for a request that came over TLS is Secure (behind
    Hypercorn with TLS, or a trusted proxy once that exists), never otherwise."""
    scope = {
        "type": "http",
        "scheme": scheme,
        "method": "POST",
        "path": "/signin",
        "headers": [(b"host", b"mail.example.test")],
        "server": ("mail.example.test", 443 if secure else 80),
    }
    response = Response()
    set_session_cookie(response, Request(scope), "id")
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert ("secure" in attributes) is secure
    assert "httponly" in attributes and "samesite=lax" in attributes
