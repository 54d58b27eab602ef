"""Formatted mail from the webmail, and the From chooser.

Pins: HTML from the editor arrives as multipart/alternative (text/plain first, then
text/html) with the markup cleaned by the allow-list (no script, no event handler, no
javascript: link) and a plain-text part that keeps lists, quotes and links; a plain
form (no script in the browser) still sends text/plain; To/Cc/Bcc carry data-suggest;
the From chooser offers alice's aliases, a message sent from one arrives with it, and a
From that is not alice's is refused by the submission check with the form kept.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import RunningServer
from tests.web.client import WebClient
from tests.web.compose_support import (
    form_of,
    messages,
    parse,
    post_compose,
    sender_options,
    text_of,
)

EDITOR_HTML = (
    "<div>Hello <b>bold</b> and <i>italic</i>,"
    ' see <a href="https://example.test/page" onclick="steal()">the page</a>'
    ' and <a href="javascript:alert(1)">this</a>.</div>'
    "<ul><li>apples</li><li>pears</li></ul>"
    "<ol><li>first</li><li>second</li></ol>"
    "<blockquote>quoted words</blockquote>"
    "<script>window.owned = 1</script><img src=https://tracker.test/x.png>"
)


def test_formatted_message_is_multipart_alternative(
    server: RunningServer, alice: WebClient
) -> None:
    fields = form_of(alice.get("/compose").text)
    fields.update(
        to="bob@example.test",
        subject="Formatted",
        format="html",
        html=EDITOR_HTML,
        body="ignored when the editor was used",
        action="send",
    )
    reply = post_compose(alice, fields)
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == "/folder?f=INBOX&sent=local"
    inbox = messages(server, "bob@example.test", "INBOX")
    assert len(inbox) == 1
    message = parse(inbox[0][1])
    assert message.get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]  # RFC 2046 §5.1.4: richest last
    html = text_of(message, "html")
    assert "<b>bold</b>" in html and "<i>italic</i>" in html
    assert '<a href="https://example.test/page"' in html
    for hostile in ("script", "onclick", "javascript:", "owned", "tracker.test", "<img"):
        assert hostile not in html
    plain = text_of(message, "plain")
    assert "Hello bold and italic, see the page <https://example.test/page> and this." in plain
    assert "- apples\n- pears" in plain
    assert "1. first\n2. second" in plain
    assert "> quoted words" in plain
    assert "ignored" not in plain and "owned" not in plain


def test_plain_form_without_script_sends_text(server: RunningServer, alice: WebClient) -> None:
    page = alice.get("/compose").text
    fields = form_of(page)
    assert fields["format"] == "plain"  # the page as served, before editor.js runs
    fields.update(to="bob@example.test", subject="Plain", body="just text\n> not a quote\n")
    assert post_compose(alice, fields).status_code == 303
    message = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "just text\n> not a quote\n"


def test_recipient_fields_offer_suggestions(alice: WebClient) -> None:
    page = alice.get("/compose").text
    for name in ("to", "cc", "bcc"):
        assert re.search(rf'<input type="text" name="{name}" [^>]*data-suggest', page), name
    assert '<div class="editor" contenteditable="true"' in page
    assert 'src="/static/editor.js" defer' in page
    script = alice.get("/static/editor.js")
    assert script.status_code == 200 and "execCommand" in script.text


def test_from_chooser_offers_aliases(server: RunningServer, alice: WebClient) -> None:
    accounts = server.services.accounts
    server.call(lambda: accounts.add_alias("sales@example.test", ["alice@example.test"]))
    server.call(lambda: accounts.add_alias("@example.test", ["alice@example.test"]))
    server.call(lambda: accounts.add_alias("team@example.test", ["bob@example.test"]))
    page = alice.get("/compose").text
    assert sender_options(page) == ["alice@example.test", "sales@example.test"]
    fields = form_of(page)
    assert fields["from"] == "alice@example.test"  # the account's own address by default
    fields.update({"from": "sales@example.test", "to": "bob@example.test", "subject": "Alias"})
    assert post_compose(alice, fields).status_code == 303
    message = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert message["From"] == "sales@example.test"

    fields.update({"from": "team@example.test", "subject": "Not mine"})
    refused = post_compose(alice, fields)
    assert refused.status_code == 400
    assert "Not sent:" in refused.text and "not owned" in refused.text
    assert 'value="Not mine"' in refused.text
    assert len(messages(server, "bob@example.test", "INBOX")) == 1


def test_refused_form_shows_only_clean_markup(server: RunningServer, alice: WebClient) -> None:
    fields = form_of(alice.get("/compose").text)
    fields.update(
        to="nobody@example.test",
        format="html",
        html='<div>kept <b>bold</b><img src=x onerror="window.owned=1"><script>x()</script></div>',
    )
    refused = post_compose(alice, fields)
    assert refused.status_code == 400
    shown = form_of(refused.text)["html"]
    assert "<b>bold</b>" in shown
    assert "onerror" not in shown and "<img" not in shown and "script" not in shown
