"""Search in the real browser: type in the folder page's search box, see the results
page, open a result (and read it); the conversation toggle shows the thread."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, screenshot
from tests.e2e.conftest import RunningServer
from tests.web.listing_helpers import append_many

ALICE = "alice@example.test"
# Elements that stick out to the right of the viewport (a phone would scroll sideways);
# the folder strip's links scroll inside it, by design.
WIDE = (
    "Array.from(document.querySelectorAll('body *'))"
    ".filter(e => !e.parentElement.closest('.folders ul'))"
    ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
    ".map(e => e.tagName + '.' + e.className)"
)


def _mail(subject: str, body: str, msgid: str, refs: str = "") -> bytes:
    head = f"From: Bob Example <bob@example.test>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
    head += f"Message-ID: <{msgid}>\r\n"
    if refs:
        head += f"In-Reply-To: <{refs}>\r\nReferences: <{refs}>\r\n"
    return (head + f"\r\n{body}\r\n").encode()


def test_search_box_finds_and_opens_a_message(
    server: RunningServer, sign_in: Callable[..., Page], outside_requests: list[str]
) -> None:
    append_many(
        server,
        ALICE,
        [
            _mail("Garden plans", "the tomatoes need stakes", "g1@x"),
            _mail("Re: Garden plans", "and some water", "g2@x", "g1@x"),
            _mail("Invoice 42", "please pay by friday", "i1@x"),
        ],
    )
    page = sign_in(ALICE)
    box = page.get_by_role("searchbox", name="Search INBOX")
    box.fill("tomatoes")
    box.press("Enter")
    page.wait_for_url("**/search?*q=tomatoes*")
    expect(page.locator(".result-count")).to_have_text("1 message found")
    results = page.locator("ul.results li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Garden plans")
    screenshot(page, "search-desktop")
    results.first.locator("a").click()
    page.wait_for_url("**/read?*")
    expect(page.locator("body")).to_contain_text("the tomatoes need stakes")

    # an operator, from the results page's own box
    page.go_back()
    page.get_by_role("searchbox", name="Search for").fill("subject:invoice")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("ul.results li")).to_have_count(1)
    expect(page.locator("ul.results")).to_contain_text("Invoice 42")

    # the conversation toggle groups the garden thread into one row of two
    page.goto(page.url.split("/search")[0] + "/folder?f=INBOX")
    page.get_by_role("link", name="Conversations").click()
    rows = page.locator("ul.threads > li")
    expect(rows).to_have_count(2)
    garden = rows.filter(has_text="Garden plans")
    expect(garden.locator(".thread-count")).to_have_text("2")
    garden.locator("a").first.click()
    expect(page.locator(".thread-messages li")).to_have_count(2)
    assert outside_requests == []


def test_search_page_fits_a_phone(
    server: RunningServer, sign_in: Callable[..., Page], outside_requests: list[str]
) -> None:
    append_many(server, ALICE, [_mail("Phone check", "small screens", "p1@x")])
    page = sign_in(ALICE, viewport=PHONE)
    page.get_by_role("searchbox", name="Search INBOX").fill("small")
    page.keyboard.press("Enter")
    expect(page.locator("ul.results li")).to_have_count(1)
    assert page.evaluate(WIDE) == []
    screenshot(page, "search-phone")
    page.go_back()
    assert page.evaluate(WIDE) == []  # the folder page with the search box
    page.get_by_role("link", name="Conversations").click()
    expect(page.locator("ul.threads > li")).to_have_count(1)
    assert page.evaluate(WIDE) == []
    assert outside_requests == []


def test_address_suggestions_with_the_keyboard(
    server: RunningServer,
    sign_in: Callable[..., Page],
    base_url: str,
    outside_requests: list[str],
) -> None:
    append_many(server, ALICE, [_mail("Hello", "hi", "h1@x")])  # from Bob Example
    append_many(
        server,
        ALICE,
        [b"From: alice@example.test\r\nTo: Carla Sent <carla@far.test>\r\nSubject: s\r\n\r\nx\r\n"],
        mailbox="Sent",
    )
    page = sign_in(ALICE)
    page.goto(base_url + "/compose")
    to = page.locator("input[name=to]")
    # the compose page marks To/Cc/Bcc with data-suggest; mark it here if it does not yet
    page.evaluate("document.querySelector('input[name=to]').setAttribute('data-suggest', '')")
    to.click()
    to.press_sequentially("someone@far.test, bo")
    option = page.get_by_role("option", name="Bob Example <bob@example.test>")
    expect(option).to_be_visible()
    expect(to).to_have_attribute("aria-expanded", "true")
    to.press("ArrowDown")
    expect(option).to_have_attribute("aria-selected", "true")
    to.press("Enter")
    expect(to).to_have_value("someone@far.test, Bob Example <bob@example.test>, ")
    expect(page.get_by_role("listbox")).to_be_hidden()
    to.press_sequentially("car")
    expect(page.get_by_role("option", name="Carla Sent <carla@far.test>")).to_be_visible()
    to.press("Escape")
    expect(page.get_by_role("listbox")).to_be_hidden()
    assert outside_requests == []
