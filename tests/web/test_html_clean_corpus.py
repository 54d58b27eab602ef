"""The XSS corpus through the cleaner alone, without a browser: the first wall holds.

The browser test (tests/browser/test_browser_xss.py) shows that nothing of the corpus
runs or loads in the webmail; but there the sandbox and the frame's
Content-Security-Policy would hide a gap in the cleaner. Here each case's HTML part
(decoded as the webmail decodes it) goes through `clean_html`, and what comes out must
hold no element or attribute that can run, load, submit or frame anything, and no link
but http, https and mailto. Cleaning twice must give the same markup: a cleaner whose
output parses into something else is the root of mutation XSS.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from pillarbox.web.html_clean import clean_html
from tests.browser import xss_corpus

BEACON_PORT = 9  # never contacted: the markup is only cleaned

# Elements that run, load, submit, frame, or switch the parser into another mode.
FORBIDDEN_TAGS = frozenset(
    {
        *("script", "style", "iframe", "frame", "frameset", "fencedframe", "object", "embed"),
        *("applet", "param", "link", "meta", "base", "form", "input", "button", "select"),
        *("textarea", "isindex", "svg", "math", "image", "video", "audio", "source", "track"),
        *("picture", "portal", "template", "noscript", "noembed", "noframes", "xmp"),
        *("plaintext", "title", "marquee", "annotation-xml", "foreignobject"),
    }
)
# Attributes that load a URL or hold one that is followed without a click.
FORBIDDEN_ATTRIBUTES = frozenset(
    {
        *("src", "srcset", "srcdoc", "poster", "action", "formaction", "background", "ping"),
        *("data", "dynsrc", "lowsrc", "longdesc", "code", "codebase", "xlink:href", "usemap"),
        *("manifest", "http-equiv", "content"),
    }
)
LINK = re.compile(r"^(https?:|mailto:)", re.IGNORECASE)
ACTIVE_STYLE = re.compile(r"url\s*\(|expression\s*\(|@import|\\|image-set", re.IGNORECASE)


class Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name in FORBIDDEN_ATTRIBUTES:
                self.problems.append(f"<{tag} {name}={value[:60]!r}>")
            elif name == "href" and not LINK.match(value):
                self.problems.append(f"<{tag} href={value[:60]!r}>")
            elif name == "style" and ACTIVE_STYLE.search(value):
                self.problems.append(f"<{tag} style={value[:60]!r}>")

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"<!--{data[:60]}-->")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"<?{data[:60]}>")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"<![{data[:60]}>")


HTML_CASES = [
    name for name in xss_corpus.names() if xss_corpus.load(name, BEACON_PORT).html() is not None
]


@pytest.mark.parametrize("name", HTML_CASES)
def test_cleaned_corpus_holds_nothing_active(name: str) -> None:
    html = xss_corpus.load(name, BEACON_PORT).html()
    assert html is not None
    cleaned = clean_html(html).markup
    inspector = Inspector()
    inspector.feed(cleaned)
    inspector.close()
    assert inspector.problems == [], cleaned
    assert clean_html(cleaned).markup == cleaned  # stable: re-parsing changes nothing


def test_the_inspector_sees_what_it_looks_for() -> None:
    """The checks above can fail: raw payloads of the corpus are all caught."""
    for name in ("script_basic", "event_img_onerror", "url_javascript_href", "base_href"):
        html = xss_corpus.load(name, BEACON_PORT).html()
        assert html is not None
        inspector = Inspector()
        inspector.feed(html)
        assert inspector.problems != [], name


def test_links_that_would_resolve_against_the_webmail_go() -> None:
    cleaned = clean_html(
        '<a href="/compose?to=x">1</a><a href="next.html">2</a><a href="//evil.example/">3</a>'
        '<a href="https://example.org/">4</a><a href="mailto:a@example.org">5</a>'
    ).markup
    hrefs = re.findall(r'href="([^"]*)"', cleaned)
    assert hrefs == ["https://example.org/", "mailto:a@example.org"]
