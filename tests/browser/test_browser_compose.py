"""Writing mail in a real browser: reply, forward, drafts and formatted text.

Pins (checked over IMAP, as another device would see them): a reply made from the
message page arrives with In-Reply-To and References and marks the original
\\Answered; a forward marks it $Forwarded; "Save draft" puts the message in Drafts,
the draft's page resumes it in the editor with its fields, and sending removes it;
autosave stores a draft without any button pressed; Ctrl+B in the editor sends bold
text as <b> or <strong> in the HTML part, with the plain-text part beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, screenshot
from tests.e2e.conftest import RunningServer
from tests.web.client import append
from tests.web.compose_support import (
    flags_of,
    messages,
    parse,
    text_of,
    uidvalidity,
    wait_until,
)

ORIGINAL = (
    b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
    b"Subject: Lunch?\r\nDate: Sat, 05 Dec 2026 11:00:00 +0000\r\n"
    b"Message-ID: <lunch-1@example.test>\r\n\r\nShall we have lunch on Friday?\r\n"
)


def _open_original(server: RunningServer, page: Page, base_url: str) -> int:
    uid = append(server, "alice@example.test", ORIGINAL)
    v = uidvalidity(server, "alice@example.test", "INBOX")
    page.goto(base_url + "/read?" + urlencode({"f": "INBOX", "v": v, "uid": uid}))
    expect(page.locator("h1")).to_contain_text("Lunch?")
    return uid


def test_reply_in_the_browser(
    server: RunningServer, sign_in: Callable[..., Page], base_url: str, outside_requests: list[str]
) -> None:
    page = sign_in("alice@example.test")
    uid = _open_original(server, page, base_url)
    page.click("a[data-compose=reply]")
    page.wait_for_url("**/compose?*mode=reply*")
    expect(page.locator("input[name=subject]")).to_have_value("Re: Lunch?")
    editor = page.locator(".editor")
    expect(editor).to_be_visible()
    expect(editor.locator("blockquote")).to_contain_text("Shall we have lunch on Friday?")
    screenshot(page, "compose-reply-desktop")
    editor.click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("Friday works for me.")
    page.click("button[value=send]")
    page.wait_for_url("**/folder?f=INBOX&sent=local")
    expect(page.locator("body")).to_contain_text("Message sent.")

    got = messages(server, "bob@example.test", "INBOX")
    assert len(got) == 1
    message = parse(got[0][1])
    assert message["In-Reply-To"] == "<lunch-1@example.test>"
    assert " ".join(str(message["References"]).split()) == "<lunch-1@example.test>"
    plain = text_of(message, "plain")
    assert plain.startswith("Friday works for me.")
    assert "> Shall we have lunch on Friday?" in plain
    assert "\\Answered" in flags_of(server, "alice@example.test", "INBOX", uid)
    assert outside_requests == []


def test_forward_in_the_browser(
    server: RunningServer, sign_in: Callable[..., Page], base_url: str
) -> None:
    page = sign_in("alice@example.test")
    uid = _open_original(server, page, base_url)
    page.click("a[data-compose=forward]")
    page.wait_for_url("**/compose?*mode=forward*")
    expect(page.locator("input[name=subject]")).to_have_value("Fwd: Lunch?")
    page.fill("input[name=to]", "carol@other.test")
    page.click("button[value=send]")
    page.wait_for_url("**/folder?f=INBOX&sent=local")
    message = parse(messages(server, "carol@other.test", "INBOX")[0][1])
    assert message["Subject"] == "Fwd: Lunch?"
    assert "Shall we have lunch on Friday?" in text_of(message, "plain")
    assert "$Forwarded" in flags_of(server, "alice@example.test", "INBOX", uid)


def test_draft_saved_resumed_and_sent(
    server: RunningServer, sign_in: Callable[..., Page], base_url: str
) -> None:
    page = sign_in("alice@example.test")
    page.goto(base_url + "/compose")
    page.fill("input[name=to]", "bob@example.test")
    page.fill("input[name=subject]", "Draft in the browser")
    page.locator(".editor").click()
    page.keyboard.type("Words kept for later")
    page.click("button[value=draft]")
    expect(page.locator("p.notice")).to_contain_text("Draft saved.")
    drafts = messages(server, "alice@example.test", "Drafts")
    assert len(drafts) == 1 and b"\\Draft" in drafts[0][0]
    v = uidvalidity(server, "alice@example.test", "Drafts")

    # resumed from the draft's own page
    page.goto(base_url + "/read?" + urlencode({"f": "Drafts", "v": v, "uid": drafts[0][2]}))
    page.click("text=Edit draft")
    page.wait_for_url("**/compose?draft=*")
    expect(page.locator("input[name=to]")).to_have_value("bob@example.test")
    expect(page.locator("input[name=subject]")).to_have_value("Draft in the browser")
    expect(page.locator(".editor")).to_contain_text("Words kept for later")

    # autosave: a change is saved without pressing anything (a new version replaces it)
    page.locator(".editor").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(", and more")
    expect(page.locator(".compose-status")).to_contain_text("Draft saved at", timeout=15_000)

    def updated() -> bool:
        found = messages(server, "alice@example.test", "Drafts")
        return len(found) == 1 and "and more" in text_of(parse(found[0][1]), "plain")

    wait_until(updated)
    page.click("button[value=send]")
    page.wait_for_url("**/folder?f=INBOX&sent=local")
    message = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert "Words kept for later, and more" in text_of(message, "plain")
    assert messages(server, "alice@example.test", "Drafts") == []


def test_bold_arrives_as_html(
    server: RunningServer, sign_in: Callable[..., Page], base_url: str
) -> None:
    page = sign_in("alice@example.test", viewport=PHONE)
    page.goto(base_url + "/compose")
    screenshot(page, "compose-phone")
    page.fill("input[name=to]", "bob@example.test")
    page.fill("input[name=subject]", "Bold")
    page.locator(".editor").click()
    page.keyboard.press("Control+B")
    page.keyboard.type("strong words")
    page.keyboard.press("Control+B")
    page.keyboard.type(" then plain")
    page.click("button[value=send]")
    page.wait_for_url("**/folder?f=INBOX&sent=local")
    message = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    assert message.get_content_type() == "multipart/alternative"
    html = text_of(message, "html")
    assert re.search(r"<(b|strong)>strong words</\1>", html), html
    assert text_of(message, "plain").strip() == "strong words then plain"


def test_dropped_file_survives_autosave_and_is_sent_once(
    server: RunningServer, sign_in: Callable[..., Page], base_url: str
) -> None:
    page = sign_in("alice@example.test")
    page.goto(base_url + "/compose")
    page.fill("input[name=to]", "bob@example.test")
    page.fill("input[name=subject]", "With a dropped file")
    transfer = page.evaluate_handle(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["dropped bytes\\n"], "dropped.txt", {type: "text/plain"}));
            return dt;
        }"""
    )
    page.dispatch_event("form.compose", "drop", {"dataTransfer": transfer})
    assert page.eval_on_selector("input[type=file]", "i => i.files.length") == 1
    # autosave takes the file into the draft; the form then lists it as kept
    expect(page.locator(".compose-status")).to_contain_text("Draft saved at", timeout=15_000)
    expect(page.locator("ul.carried")).to_contain_text("dropped.txt")
    assert page.eval_on_selector("input[type=file]", "i => i.files.length") == 0
    page.click("button[value=send]")
    page.wait_for_url("**/folder?f=INBOX&sent=local")
    message = parse(messages(server, "bob@example.test", "INBOX")[0][1])
    attached = list(message.iter_attachments())
    assert [a.get_filename() for a in attached] == ["dropped.txt"]
    assert attached[0].get_content() == "dropped bytes\n"
    assert messages(server, "alice@example.test", "Drafts") == []
