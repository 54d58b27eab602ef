"""Making mail text safe to show: HTML bodies cleaned with nh3, plain text linked.

HTML mail is hostile input. It is cleaned with nh3 (the ammonia sanitiser, an HTML5
parser with an allow list) before it leaves the server: only formatting elements and
attributes stay, `<script>`, `<style>` and their content go, every event-handler
attribute goes, and links keep only http, https and mailto URLs (so ``javascript:``,
``data:`` and ``vbscript:`` links are dropped). Images: a remote image (http, https) is
a read receipt and a tracker, so its source is removed unless the reader allowed remote
images (they are counted either way, so the page offers to show them only when there
are some); a ``cid:`` source (RFC 2392) becomes the ``data:`` URI the caller made of
the part it names, or goes; every other source goes. The cleaned markup is then shown
in a sandboxed frame under its own strict Content-Security-Policy
(`reading.frame_csp`): a second wall if the first had a gap, since there no script may
run and nothing may be loaded but images, and those only from where this cleaner let
them through.

Plain text is escaped first and only then are URLs in it turned into links, so no
byte of the message is ever markup.

Must not: fetch anything, or decide where the result is shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from urllib.parse import unquote

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
_REMOTE = ("http:", "https:")
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
    remote_images: int  # images with an http(s) source, shown or not
    blocked_images: int  # of those, the ones whose source was removed


def clean_html(
    markup: str, *, remote_images: bool = False, inline: Mapping[str, str] | None = None
) -> CleanHtml:
    """`markup` made inert. `remote_images`: keep http(s) image sources; `inline`: the
    ``data:`` URI for each Content-ID (without angle brackets) an image may name."""
    remote = 0
    parts = inline or {}

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        if tag == "img" and attribute == "src":
            source = value.strip()
            if source.lower().startswith(_REMOTE):
                remote += 1
                return value if remote_images else None
            if source[:4].lower() == "cid:":
                return parts.get(content_id(source[4:]))
            return None
        if value.lstrip()[:4].lower() == "cid:":
            return None  # a cid: link (allowed as a scheme for images only)
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
        url_schemes={*_SCHEMES, "cid"},
        filter_style_properties=set(_STYLE_PROPERTIES),
        # A mail has no base URL: a relative link (or one whose scheme a NUL made
        # unreadable, "java\ufffdscript:") would resolve against this site and open a
        # page of the webmail from the message (found by tests/browser/xss_corpus).
        url_relative="deny",
    )
    return CleanHtml(cleaned, remote, 0 if remote_images else remote)


def content_id(url_part: str) -> str:
    """The Content-ID a ``cid:`` URL names, as a key: RFC 2392 §2 says the URL is the
    msg-id without its angle brackets, %-encoded; compared case-sensitively as written,
    but with brackets and surrounding space gone."""
    return unquote(url_part.strip()).strip().strip("<>")


# A URL in text: a scheme we link, then anything up to whitespace or a character that
# cannot be in one; punctuation that usually ends a sentence is left out of the link.
_URL = re.compile(r"\b(?:https?://|mailto:)[^\s<>\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def _trimmed(url: str) -> str:
    """`url` without the punctuation that ends the sentence around it; a closing
    parenthesis stays when it closes one the URL opened (``.../Foo_(bar)``)."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def linkify(text: str) -> Markup:
    """Escaped text in which http(s) and mailto URLs are links opening in a new tab."""
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        url = _trimmed(match.group(0))
        if url.endswith("://") or url.lower() == "mailto:":
            continue
        out.append(escape(text[pos : match.start()]))
        href = escape(url, quote=True)
        out.append(f'<a href="{href}" target="_blank" rel="noopener noreferrer">{href}</a>')
        pos = match.start() + len(url)
    out.append(escape(text[pos:]))
    return Markup("".join(out))
