"""The reading page's pure parts, value in, value out.

Pins: `parse_results` reads back what `authentication_results` writes (one parser and
one writer, in mailauth.results), and reads other servers' styles (comments holding
";" and "=", quoted values, version numbers, "none"); `verified_sender` believes only
our authserv-id, above the first Received field, and wants dmarc=pass or an aligned
dkim=pass; `clean_html` turns cid: image sources into the data: URI given, drops
unknown ones and cid: links, and counts remote images, keeping them only when asked;
`linkify` leaves sentence punctuation out of links but keeps a closing parenthesis the
URL opened, and links only http, https and mailto; sizes read as people read them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pillarbox.mailauth.dkim import DkimResult
from pillarbox.mailauth.dmarc import DmarcResult
from pillarbox.mailauth.results import authentication_results, parse_results
from pillarbox.mailauth.spf import SpfResult
from pillarbox.services.sender_verdict import verified_sender
from pillarbox.web.html_clean import clean_html, content_id, linkify
from pillarbox.web.mime_view import human_size, message_view

HOST = "mail.example.test"


def test_parse_reads_back_what_we_write() -> None:
    field = authentication_results(
        HOST,
        SpfResult("pass", "good.test", "mailfrom", "a@good.test", ""),
        [
            DkimResult("fail", "evil.test", "x", "rsa-sha256", "bad signature"),
            DkimResult("pass", "good.test", "s1", "ed25519-sha256", ""),
        ],
        DmarcResult("pass", "good.test", "reject", "none"),
    )
    parsed = parse_results(field.partition(b":")[2])
    assert parsed.authserv_id == HOST
    methods = [(r.method, r.result, r.get("header.d")) for r in parsed.results]
    assert methods == [
        ("spf", "pass", ""),
        ("dkim", "fail", "evil.test"),
        ("dkim", "pass", "good.test"),
        ("dmarc", "pass", ""),
    ]
    assert parsed.results[1].get("reason") == "bad signature"
    assert parsed.results[3].get("header.from") == "good.test"


def test_parse_other_styles() -> None:
    value = (
        b' "Mx.Example.TEST." 1 (version one);\r\n dkim/1 = pass (comment; dmarc=pass)'
        b' header.d=Good.test header.b="ab;cd"; spf=softfail (x) smtp.mailfrom=z@q.test'
    )
    parsed = parse_results(value)
    assert parsed.authserv_id == "mx.example.test"
    assert [(r.method, r.result) for r in parsed.results] == [("dkim", "pass"), ("spf", "softfail")]
    assert parsed.results[0].get("header.b") == "ab;cd"
    assert parse_results(b" mx.example.test; none").results == ()


def _message(results: str, *, received_first: bool = False, sender: str = "a@good.test") -> bytes:
    received = "Received: from x by mail.example.test; Sun, 6 Dec 2026 10:00:00 +0000\r\n"
    fields = f"Authentication-Results: {results}\r\n"
    head = received + fields if received_first else fields + received
    return f"{head}From: <{sender}>\r\nSubject: s\r\n\r\nbody\r\n".encode()


@pytest.mark.parametrize(
    ("results", "kwargs", "verified"),
    [
        (f"{HOST}; dmarc=pass header.from=good.test", {}, True),
        (f"{HOST}; dkim=pass header.d=good.test", {}, True),
        (f"{HOST}; dkim=pass header.d=mail.good.test", {}, True),  # relaxed alignment
        (f"{HOST.upper()}.; dmarc=pass", {}, True),  # the id compares as a domain
        (f"{HOST}; dkim=pass header.d=other.test", {}, False),  # not aligned
        (f"{HOST}; spf=pass smtp.mailfrom=a@good.test", {}, False),  # SPF alone
        (f"{HOST}; dmarc=fail header.from=good.test", {}, False),
        ("mx.elsewhere.test; dmarc=pass", {}, False),  # not our authserv-id
        (f"mx.elsewhere.test (says {HOST}); dmarc=pass", {}, False),
        (f"{HOST}; dmarc=pass", {"received_first": True}, False),  # the sender wrote it
        (f"{HOST}; dkim=pass header.d=good.test", {"sender": "a@good.test, b@x.test"}, False),
    ],
)
def test_verified_sender(results: str, kwargs: dict[str, Any], verified: bool) -> None:
    assert verified_sender(_message(results, **kwargs), HOST) is verified


def test_newest_of_our_fields_counts() -> None:
    data = (
        f"Authentication-Results: {HOST}; dmarc=fail\r\n"
        f"Authentication-Results: {HOST}; dmarc=pass\r\n"
        "From: a@good.test\r\n\r\nx\r\n"
    ).encode()
    assert verified_sender(data, HOST) is False


def test_cid_and_remote_images() -> None:
    markup = (
        '<img src="cid:logo%401@x.test" alt="a"><img src="CID:missing"><img src="https://t/1.gif">'
        '<img src="data:image/png;base64,AAAA"><a href="cid:logo@1@x.test">l</a>'
    )
    uri = "data:image/png;base64,iVBORw=="
    cleaned = clean_html(markup, inline={"logo@1@x.test": uri})
    assert f'<img src="{uri}" alt="a">' in cleaned.markup
    assert cleaned.markup.count("src=") == 1
    assert "cid:" not in cleaned.markup.lower() and "href" not in cleaned.markup
    assert (cleaned.remote_images, cleaned.blocked_images) == (1, 1)
    shown = clean_html(markup, remote_images=True)
    assert '<img src="https://t/1.gif">' in shown.markup
    assert (shown.remote_images, shown.blocked_images) == (1, 0)
    assert content_id(" %3Cabc%40d%3E ") == "abc@d"


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("see https://a.test/x.", ["https://a.test/x"]),
        ("(https://a.test/x)", ["https://a.test/x"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("go: https://a.test/?q=1&r=2!", ["https://a.test/?q=1&amp;r=2"]),
        ("<https://a.test/>, 'https://b.test/'", ["https://a.test/", "https://b.test/"]),
        ("mail mailto:a@b.test; or MAILTO:c@d.test", ["mailto:a@b.test", "MAILTO:c@d.test"]),
        ('javascript:alert(1) data:text/html,x vbscript:x ftp://a "http://"', []),
    ],
)
def test_linkify(text: str, links: list[str]) -> None:
    html = str(linkify(text))
    assert _hrefs(html) == links
    assert html.count('target="_blank" rel="noopener noreferrer"') == len(links)
    assert "<script" not in html and "<b>" not in str(linkify("<b>x</b>"))


def _hrefs(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)"', html)


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1, 1023, 1024, 1536, 10 * 1024, 20 * 1024 * 1024)] == [
        "0 bytes",
        "1 byte",
        "1023 bytes",
        "1.0 KB",
        "1.5 KB",
        "10 KB",
        "20 MB",
    ]


def test_sender_address_for_trust() -> None:
    view = message_view(b'From: "Shop, Inc" <News@Shop.test>\r\nSubject: s\r\n\r\nx\r\n')
    assert view.sender_address == "News@Shop.test"
