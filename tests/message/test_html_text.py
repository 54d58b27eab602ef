"""The plain-text alternative of the webmail's formatted mail (message.html_text).

Pins: lists as "- " and "1. " lines (nested ones indented), blockquotes as "> " lines
(nested as "> > "), links as "text <url>" (a link whose text is its address once),
paragraphs and <br> as line breaks, entities decoded, unclosed tags losing no text.
"""

from __future__ import annotations

from pillarbox.message.html_text import html_to_text


def test_lists() -> None:
    markup = "<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul><p>after</p>"
    assert html_to_text(markup) == "- one\n- two\n   1. a\n   2. b\n\nafter\n"


def test_quotes_nest() -> None:
    markup = "<div>I said:</div><blockquote>outer<blockquote>inner</blockquote>back</blockquote>"
    assert html_to_text(markup) == "I said:\n\n> outer\n>\n> > inner\n>\n> back\n"


def test_links() -> None:
    markup = (
        '<a href="https://example.test/x">the page</a>, '
        '<a href="https://example.test/y">https://example.test/y</a>, '
        '<a href="mailto:bob@example.test">bob@example.test</a>'
    )
    assert html_to_text(markup) == (
        "the page <https://example.test/x>, https://example.test/y, bob@example.test\n"
    )


def test_breaks_entities_and_broken_markup() -> None:
    assert html_to_text("<div>a<br>b</div><div><br></div><div>c &amp; d &lt;e&gt;") == (
        "a\nb\n\nc & d <e>\n"
    )
    assert html_to_text("<b>never closed <i>still here") == "never closed still here\n"
    assert html_to_text("") == ""
