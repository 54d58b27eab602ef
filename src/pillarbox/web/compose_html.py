"""The formatted text a person writes in the compose editor, made safe to send.

The browser posts the editor's markup; whatever it holds (pasted content, a hand-made
request) is cleaned with nh3 before it goes into a message, to a small allow-list of
what the editor itself makes: paragraphs, line breaks, bold, italic, lists, quotes and
links to http, https or mailto URLs. Everything else goes (its text stays), so a sent
message never carries script, styles, remote images or forms from this site.

Also the other way: plain text (a quoted reply, a forwarded text) as editor markup, so
the editor starts with the same content as the plain-text field.

Must not: decide what the plain-text alternative says (`message.html_text` does).
"""

from __future__ import annotations

from html import escape

import nh3

TAGS = frozenset(
    {"p", "br", "b", "strong", "i", "em", "ul", "ol", "li", "a", "blockquote", "div", "span"}
)
SCHEMES = frozenset({"http", "https", "mailto"})


def clean_compose_html(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=set(TAGS),
        clean_content_tags={"script", "style", "title", "head"},
        attributes={"a": {"href"}},
        url_schemes=set(SCHEMES),
        strip_comments=True,
        link_rel="noopener noreferrer",
    ).strip()


def has_text(markup: str) -> bool:
    """Does the cleaned markup say anything? (An emptied editor leaves ``<br>``.)"""
    return bool(nh3.clean(markup, tags=set()).strip())


def text_to_html(text: str) -> str:
    """Plain text as editor markup: "> " lines become blockquotes, each line a line."""
    out: list[str] = []
    depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        level = 0
        rest = line
        while rest.startswith(">"):
            level += 1
            rest = rest[1:]
            if rest.startswith(" "):
                rest = rest[1:]
        while depth < level:
            out.append("<blockquote>")
            depth += 1
        while depth > level:
            out.append("</blockquote>")
            depth -= 1
        out.append(f"<div>{escape(rest) if rest else '<br>'}</div>")
    out.append("</blockquote>" * depth)
    return "".join(out)
