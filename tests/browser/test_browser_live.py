"""Live sync in a real browser: the open pages follow the account without a reload.

Pins: mail delivered over SMTP shows in bob's open INBOX within one second, with the
unread count and the title updated, and the page never reloads; a flag set over IMAP
shows in the list and on the open message, where the HTML body's frame is kept (not
reloaded); a page whose connection was down (offline, as after a sleep) catches up when
it is back, and so does a tab shown again after a long sleep; a refresh keeps the
focused row; text written in the editor after the session expired survives sign-in.
"""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Callable

from playwright.sync_api import Page, Route, expect

from tests.browser.forms import write_body
from tests.e2e.conftest import PASSWORD, RunningServer
from tests.web.client import imap_login

LIVE_WITHIN = 1.0  # seconds: the promise


def _deliver(server: RunningServer, subject: str, html: bool = False) -> None:
    """Mail from outside to bob, over the MX listener."""
    kind = "text/html; charset=utf-8" if html else "text/plain; charset=utf-8"
    body = "<p>Hello <b>bob</b></p>" if html else "hello bob"
    message = (
        f"From: Carol <carol@other.test>\r\nTo: bob@example.test\r\nSubject: {subject}\r\n"
        f"Content-Type: {kind}\r\n\r\n{body}\r\n"
    )
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), "client.test", timeout=30) as smtp:
        smtp.sendmail("carol@other.test", ["bob@example.test"], message.encode())


def _flag_over_imap(server: RunningServer, subject: str) -> None:
    imap = imap_login(server, "bob@example.test")
    try:
        imap.select("INBOX")
        typ, data = imap.uid("SEARCH", "SUBJECT", f'"{subject}"')
        assert typ == "OK" and data[0], data
        uid = data[0].split()[-1].decode()
        assert imap.uid("STORE", uid, "+FLAGS", "(\\Flagged)")[0] == "OK"
    finally:
        imap.logout()


def _live(page: Page) -> None:
    """The page's event stream is open (app.js marks the document)."""
    expect(page.locator("html[data-live=open]")).to_have_count(1)


def _mark(page: Page) -> None:
    page.evaluate("window.__notReloaded = true")


def _not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def test_new_mail_shows_within_a_second(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    page = sign_in("bob@example.test")
    _live(page)
    _mark(page)
    _deliver(server, "Arrives live")
    delivered = time.monotonic()
    row = page.locator(".list li", has_text="Arrives live")
    expect(row).to_be_visible(timeout=5000)
    took = time.monotonic() - delivered
    assert took < LIVE_WITHIN, f"the new row took {took:.2f} s"
    assert _not_reloaded(page)
    expect(page).to_have_title("INBOX (1) · Pillarbox")
    expect(page.locator(".folders li.current .count")).to_have_text("1")


def test_flag_set_over_imap_shows_in_the_list(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    _deliver(server, "To be starred")
    page = sign_in("bob@example.test")
    _live(page)
    _mark(page)
    row = page.locator(".list li", has_text="To be starred")
    expect(row.locator(".flag")).to_have_count(0)
    _flag_over_imap(server, "To be starred")
    started = time.monotonic()
    expect(row.locator(".flag")).to_have_count(1, timeout=5000)
    assert time.monotonic() - started < LIVE_WITHIN
    assert _not_reloaded(page)


def test_flag_on_the_open_message_shows_and_keeps_its_frame(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    _deliver(server, "Open me", html=True)
    page = sign_in("bob@example.test")
    page.click("text=Open me")
    page.wait_for_url("**/read?*")
    _live(page)
    frame = page.locator("iframe.html-body")
    expect(frame).to_have_count(1)
    frame.evaluate("el => { el.__kept = true; }")
    page.evaluate(
        "window.__frameLoads = 0;"
        "document.querySelector('iframe.html-body')"
        ".addEventListener('load', () => { window.__frameLoads += 1; })"
    )
    _mark(page)
    _flag_over_imap(server, "Open me")
    expect(page.locator("#message-flags")).to_contain_text("Flagged", timeout=5000)
    assert _not_reloaded(page)
    assert frame.evaluate("el => el.__kept === true")  # the same element
    assert page.evaluate("window.__frameLoads") == 0  # and not loaded again


def test_page_catches_up_after_being_offline(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    page = sign_in("bob@example.test")
    _live(page)
    _mark(page)
    page.context.set_offline(True)
    _deliver(server, "While away")
    row = page.locator(".list li", has_text="While away")
    expect(row).to_have_count(0)
    page.context.set_offline(False)  # "online": the stream is opened with the page state
    expect(row).to_be_visible(timeout=5000)
    assert _not_reloaded(page)


def test_text_written_when_the_session_expired_is_kept(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    page = sign_in("alice@example.test")
    page.goto(page.url.split("/folder")[0] + "/compose")
    page.fill("input[name=to]", "bob@example.test")
    page.fill("input[name=subject]", "Written slowly")
    write_body(page, "A long letter that must not be lost.")
    sessions = server.app.web.context.sessions

    async def expire() -> None:
        for session_id in list(sessions._sessions):
            await sessions.end(session_id)

    server.call(expire)
    page.click("form[action='/compose'] button[type=submit]")
    page.wait_for_url("**/signin?next=*")
    page.fill("input[name=address]", "alice@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/compose*")
    # Back in the editor the page offers (the formatted one, with script).
    expect(page.locator(".editor")).to_contain_text("A long letter that must not be lost.")
    expect(page.locator("input[name=subject]")).to_have_value("Written slowly")
    expect(page.locator("form .notice")).to_contain_text("session had ended")
    imap = imap_login(server, "bob@example.test")
    try:
        assert imap.select("INBOX")[1][0] == b"0"  # nothing was sent
    finally:
        imap.logout()


def test_refresh_keeps_focus_and_the_rows_elements(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    """A new message at the top moves the rows down; the row the reader is on stays
    the same element, focused, instead of being rewritten with its neighbour."""
    _deliver(server, "Already here")
    page = sign_in("bob@example.test")
    _live(page)
    link = page.locator(".list li", has_text="Already here").locator("a").first
    link.focus()
    link.evaluate("el => { el.__kept = true; }")
    _deliver(server, "Newer one")
    expect(page.locator(".list li", has_text="Newer one")).to_be_visible(timeout=5000)
    focused = page.evaluate("document.activeElement.__kept === true")
    assert focused, "focus or the row's element was lost in the refresh"
    assert "Already here" in page.evaluate("document.activeElement.textContent")


def test_tab_shown_after_a_long_sleep_catches_up(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    """A change whose refresh was lost while the tab was hidden (here: the refetch
    fails) is caught up when the tab is shown again after more than app.js's AWAY_MS:
    the stream is reopened with the page's state and the server says it moved on."""
    page = sign_in("bob@example.test")
    _live(page)
    _mark(page)
    page.evaluate(
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    refetches: list[str] = []

    def refuse(route: Route) -> None:
        refetches.append(route.request.url)
        route.abort()

    page.route("**/folder?*", refuse)
    _deliver(server, "Missed while asleep")
    deadline = time.monotonic() + 5
    while not refetches:  # the page tried to refetch and failed
        assert time.monotonic() < deadline, "no refetch after the change"
        page.wait_for_timeout(50)
    page.unroute("**/folder?*")
    row = page.locator(".list li", has_text="Missed while asleep")
    expect(row).to_have_count(0)
    page.evaluate(
        "const realNow = Date.now; Date.now = () => realNow() + 60000;"  # a minute later
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    expect(row).to_be_visible(timeout=5000)
    assert _not_reloaded(page)


_ROW_LINK = re.compile(r'(<li[^>]*>\s*)(<a href="/read\?[^"]*uid=(\d+)")')


def _with_checkboxes(route: Route) -> None:
    """Serve the folder page with a selection checkbox in each row (the markup the
    list actions add), so the refresh's handling of them is tested on its own."""
    reply = route.fetch()
    body = _ROW_LINK.sub(r'\1<input type="checkbox" name="uid" value="\3">\2', reply.text())
    route.fulfill(response=reply, body=body)


def test_refresh_keeps_checked_rows_checked(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    _deliver(server, "Pick me")
    _deliver(server, "Leave me")
    page = sign_in("bob@example.test")
    page.route("**/folder?*", _with_checkboxes)
    page.reload()
    _live(page)
    pick = page.locator(".list li", has_text="Pick me").locator("input[name=uid]")
    leave = page.locator(".list li", has_text="Leave me").locator("input[name=uid]")
    pick.check()
    _deliver(server, "Newest")
    newest = page.locator(".list li", has_text="Newest")
    expect(newest).to_be_visible(timeout=5000)
    expect(pick).to_be_checked()
    expect(leave).not_to_be_checked()
    expect(newest.locator("input[name=uid]")).not_to_be_checked()
