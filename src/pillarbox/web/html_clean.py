"""Making mail text safe to show: HTML bodies cleaned with nh3, plain text linked.

HTML mail is hostile input. It is cleaned with nh3 (the ammonia sanitiser, an HTML5
parser with an allow list) before it leaves the server: only formatting elements and
attributes stay, `<script>`, `<style>` and their content go, every event-handler
attribute goes, and links keep only http, https and mailto URLs (so ``javascript:``,
``data:`` and ``vbscript:`` links are dropped). Images lose their source: a remote
image is a read receipt and a tracker, so none is fetched (counted, so the page can
say so). The cleaned markup is then shown in a sandboxed frame under its own strict
Content-Security-Policy (`reading.MAIL_FRAME_CSP`): a second wall if the first had a
gap, since there no script may run and nothing may be loaded from anywhere.

Plain text is escaped first and only then are URLs in it turned into links, so no
byte of the message is ever markup.

Must not: fetch anything, or decide where the result is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

import nh3
from markupsafe import Markup

_TAGS = frozenset(nh3.ALLOWED_TAGS | {"font", "tfoot"})
_COMMON = {"dir", "lang", "title", "style", "align", "valign", "width", "height"}
_ATTRIBUTES: dict[str, set[str]] = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()
}
_ATTRIBUTES["*"] = _COMMON
_ATTRIBUTES["font"] = {"color", "size", "face"}
for _tag in ("table", "td", "th", "tr", "tbody", "thead", "tfoot"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"bgcolor", "border", "cellpadding", "cellspacing"})
_ATTRIBUTES["a"] = {"href", "hreflang"}  # target and rel are set by the cleaner
_SCHEMES = frozenset({"http", "https", "mailto"})
# CSS properties a style attribute may keep: layout and type, nothing that loads a
# resource (background-image, list-style-image, content, cursor, ...).
_STYLE_PROPERTIES = frozenset(
    {
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "line-height",
        "letter-spacing",
        "vertical-align",
        "white-space",
        "margin",
        "margin-top",
        "margin-bottom",
        "margin-left",
        "margin-right",
        "padding",
        "padding-top",
        "padding-bottom",
        "padding-left",
        "padding-right",
        "border",
        "border-collapse",
        "border-color",
        "border-style",
        "border-width",
        "width",
        "max-width",
        "height",
        "display",
    }
)


# A comment splits a name past the check ("expr/**/ession(" ran in old IE, OWASP XSS
# Filter Evasion Cheat Sheet) and nh3 then rewrites it, so the check never saw the
# markup that is served: a style attribute with a comment goes too.
_ACTIVE_CSS = re.compile(r"url\s*\(|expression\s*\(|\\|@import|/\*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CleanHtml:
    markup: str
    blocked_images: int  # images whose http(s) source was removed


def clean_html(markup: str) -> CleanHtml:
    blocked = 0

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            blocked += 1
            return None
        if attribute == "style" and _ACTIVE_CSS.search(value):
            return None  # url() loads, expression() ran script in old IE; \ hides both
        return value

    cleaned = nh3.clean(
        markup,
        tags=set(_TAGS),
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRIBUTES,
        attribute_filter=filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(_SCHEMES),
        filter_style_properties=set(_STYLE_PROPERTIES),
        # A mail has no base URL: a relative link (or one whose scheme a NUL made
        # unreadable, "java\ufffdscript:") would resolve against this site and open a
        # page of the webmail from the message (found by tests/browser/xss_corpus).
        url_relative="deny",
    )
    return CleanHtml(cleaned, blocked)


# A URL in text: a scheme we link, then anything up to whitespace or a character that
# cannot be in one; punctuation that usually ends a sentence is left out of the link.
_URL = re.compile(r"\b(?:https?://|mailto:)[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def linkify(text: str) -> Markup:
    """Escaped text in which http(s) and mailto URLs are links opening in a new tab."""
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if url.endswith("://") or url.lower() == "mailto:":
            continue
        out.append(escape(text[pos : match.start()]))
        href = escape(url, quote=True)
        out.append(f'<a href="{href}" target="_blank" rel="noopener noreferrer">{href}</a>')
        pos = match.start() + len(url)
    out.append(escape(text[pos:]))
    return Markup("".join(out))
