"""The plain-text alternative of a formatted message the webmail writes.

A multipart/alternative message (RFC 2046 §5.1.4) must say the same thing in each part:
a reader whose client shows only text/plain must lose the structure of the HTML as
little as possible. So lists become ``- item`` and ``1. item`` lines (indented when
nested), a blockquote becomes ``> `` lines (the quoting every mail client reads), a link
becomes ``text <url>`` (its target would otherwise be lost), and paragraphs and line
breaks stay line breaks. Bold and italic have no plain-text form that all readers agree
on, so their words stay as they are.

The input is markup already cleaned by the webmail (nh3, a small allow-list); the
standard library's HTML parser reads it.

Must not: do I/O, or trust the markup to be well nested (a missing end tag must not
lose text).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset({"p", "div", "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "pre"})
_SPACE = re.compile(r"\s+")


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.lists: list[list[int]] = []  # one entry per open list: [next number] or [] (ul)
        self.quote = 0
        self.marker = ""  # "- " or "3. ": put before the next line of a list item
        self.links: list[tuple[str, int]] = []  # open links: (href, where their text began)

    # --- lines ----------------------------------------------------------------------

    def _prefix(self) -> str:
        quote = "> " * self.quote
        depth = max(len(self.lists) - 1, 0)
        if self.marker:
            prefix = quote + "   " * depth + self.marker
            self.marker = ""
            return prefix
        indent = "   " * len(self.lists) if self.lists else ""
        return quote + indent

    def _flush(self, *, force: bool = False) -> None:
        text = "".join(self.current).strip(" ")
        self.current = []
        if text or force or self.marker:
            self.lines.append((self._prefix() + text).rstrip(" "))

    def _blank(self) -> None:
        """A blank line between paragraphs (inside a quote: a bare ">")."""
        if self.lines and self.lines[-1].strip("> ") != "":
            self.lines.append((">" * self.quote).rstrip())

    # --- parser events --------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._flush(force=True)
        elif tag in _BLOCKS:
            self._flush()
            if tag == "ul":
                self.lists.append([])
            elif tag == "ol":
                self.lists.append([1])
            elif tag == "li":
                counter = self.lists[-1] if self.lists else []
                if counter:
                    self.marker = f"{counter[0]}. "
                    counter[0] += 1
                else:
                    self.marker = "- "
            elif tag == "blockquote":
                self._blank()
                self.quote += 1
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len("".join(self.current))))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.current)[start:].strip()
            shown = href[7:] if href.lower().startswith("mailto:") else href
            if href and text not in (href, shown):
                self.current.append(f" <{href}>")
            elif href and not text:
                self.current.append(href)
        elif tag in _BLOCKS:
            self._flush()
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
                if not self.lists:
                    self._blank()
            elif tag == "blockquote" and self.quote:
                if self.lines and not self.lines[-1].strip("> "):
                    self.lines.pop()  # the quote's own last blank line
                self.quote -= 1
                self._blank()
            elif tag == "p" and not self.lists:
                self._blank()

    def handle_data(self, data: str) -> None:
        text = _SPACE.sub(" ", data)
        if not self.current:
            text = text.lstrip(" ")
        if text:
            self.current.append(text)

    def result(self) -> str:
        self._flush()
        lines = list(self.lines)
        while lines and not lines[-1].strip("> "):
            lines.pop()
        while lines and not lines[0].strip("> "):
            lines.pop(0)
        return "\n".join(lines) + "\n" if lines else ""


def html_to_text(markup: str) -> str:
    """The plain text a reader without HTML should see, "\\n" line ends."""
    writer = _TextWriter()
    writer.feed(markup)
    writer.close()
    return writer.result()
