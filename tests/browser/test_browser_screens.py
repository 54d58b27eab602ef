"""The look: every main screen on a desktop and a phone, light and dark, in the real browser.

Pins: the folder list, a message (HTML mail with an attachment), the compose form and
the sign-in page fit the screen's width with no sideways scrolling (1280 and 390 px
wide, and the list at 360 px); dark mode follows the system setting; the text people
read keeps WCAG AA contrast (4.5:1) against what is behind it in both schemes; on a
phone the folders fold into the header's menu button, which opens and closes them
(Escape too) and says so to assistive technology (aria-expanded); on a desktop they are
a sidebar with no button; the keyboard's focus shows (a 2 px or wider outline) and the
first Tab offers to skip the header.
Each screen is saved to var/screenshots/ (conftest `screenshot`) for people to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot
from tests.browser.forms import write_body
from tests.browser.sample_mail import ATTACHMENT_NAME, HTML_SUBJECT, seed_inbox
from tests.e2e.conftest import RunningServer
from tests.web.client import imap_login

SIZES = {"desktop": DESKTOP, "phone": PHONE}
SCHEMES = ("light", "dark")

# WCAG 2.x relative luminance and contrast ratio, computed in the page from the colours
# the browser actually used (each element against the first opaque background behind it).
CONTRAST_JS = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const parse = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let back = el;
  while (back) {
    const bg = parse(getComputedStyle(back).backgroundColor);
    if (bg.length === 3 || bg[3] === 1) break;
    back = back.parentElement;
  }
  const bg = back ? parse(getComputedStyle(back).backgroundColor) : [255, 255, 255];
  const a = lum(parse(getComputedStyle(el).color)), b = lum(bg);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""

# What a reader must be able to read on the list page (selector → what it is).
READABLE = {
    ".list .unread .from": "an unread sender",
    ".list .read .subject": "a read subject",
    ".list time": "an arrival time",
    ".list .preview": "a preview",
    ".folders .current .name": "the current folder",
    ".count": "an unread count",
    "h1 small": "the folder's counts",
    ".button.primary": "the Write button",
    ".brand span": "the name in the bar",
}


def _no_sideways_scroll(page: Page, width: int, screen: str) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{screen}: {scroll} px wide on a {width} px screen"


def _background_luminance(page: Page) -> float:
    rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.parametrize("size", SIZES)
def test_main_screens_light_and_dark(
    server: RunningServer, sign_in: Callable[..., Page], size: str
) -> None:
    html_uid = seed_inbox(server, "alice@example.test")
    viewport = SIZES[size]
    for scheme in SCHEMES:
        page = sign_in("alice@example.test", viewport=viewport, color_scheme=scheme)
        name = f"{size}-{scheme}"

        # The folder list.
        expect(page.locator(".list li")).to_have_count(6)
        expect(page.locator(".list .flagged .flag").first).to_be_visible()
        if scheme == "dark":
            assert _background_luminance(page) < 0.2, "dark scheme asked for, light page shown"
        else:
            assert _background_luminance(page) > 0.8, "light scheme asked for, dark page shown"
        for selector, what in READABLE.items():
            ratio = page.evaluate(CONTRAST_JS, selector)
            assert ratio is not None, f"{what} ({selector}) is not on the page"
            assert ratio >= 4.5, f"{what} ({selector}) contrast {ratio:.2f}:1 in {scheme}"
        _no_sideways_scroll(page, viewport["width"], f"list {name}")
        screenshot(page, f"list-{name}")

        # A message: HTML mail in its frame, with an attachment.
        page.get_by_role("link", name=re.compile(re.escape(HTML_SUBJECT))).click()
        expect(page.locator("h1")).to_have_text(HTML_SUBJECT)
        expect(page.frame_locator("iframe.html-body").locator("h1")).to_have_text(
            "Spring planting plan"
        )
        expect(page.get_by_role("link", name=ATTACHMENT_NAME)).to_be_visible()
        _no_sideways_scroll(page, viewport["width"], f"message {name}")
        screenshot(page, f"message-{name}")

        # The compose form, filled in.
        page.get_by_role("link", name="Write").click()
        page.wait_for_load_state("domcontentloaded")
        page.fill("input[name=to]", "bob@example.test")
        page.fill("input[name=subject]", "Seed potatoes")
        write_body(page, "Shall we split a sack of Charlotte this year?\n\nA.")
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        _no_sideways_scroll(page, viewport["width"], f"compose {name}")
        page.evaluate("window.scrollTo(0, 0)")  # typing scrolled; the bar is sticky
        screenshot(page, f"compose-{name}")

        # Signing out (an icon on a phone, named for screen readers) lands on sign-in.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        _no_sideways_scroll(page, viewport["width"], f"sign-in {name}")
        screenshot(page, f"signin-{name}")
        page.context.close()
        _mark_unread(server, html_uid)  # the next round's list looks the same


def _mark_unread(server: RunningServer, uid: int) -> None:
    imap = imap_login(server, "alice@example.test")
    try:
        imap.select("INBOX")
        typ, data = imap.uid("STORE", str(uid), "-FLAGS.SILENT", "(\\Seen)")
        assert typ == "OK", data
    finally:
        imap.logout()


def test_list_fits_a_360_px_screen(server: RunningServer, sign_in: Callable[..., Page]) -> None:
    seed_inbox(server, "alice@example.test")
    page = sign_in("alice@example.test", viewport={"width": 360, "height": 740})
    expect(page.locator(".list li")).to_have_count(6)
    _no_sideways_scroll(page, 360, "list at 360 px")
    # Each row shows its sender, time and subject side by side within the screen.
    for selector in (".list .from", ".list time", ".list .subject"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["width"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, (selector, box)


def test_keyboard_focus_is_visible(server: RunningServer, sign_in: Callable[..., Page]) -> None:
    page = sign_in("alice@example.test")
    page.keyboard.press("Tab")  # the first stop skips the header
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    for _ in range(8):  # on through the header to the folder list
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.folders') !== null"):
            break
    else:
        raise AssertionError("the folder list cannot be reached with Tab")
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert outline[0] != "none" and outline[1] >= 2, f"focused folder link outline: {outline}"


def test_phone_folds_folders_into_a_menu(
    server: RunningServer, sign_in: Callable[..., Page]
) -> None:
    phone = sign_in("alice@example.test", viewport=PHONE)
    menu = phone.get_by_role("button", name="Folders")
    inbox_link = phone.locator(".folders").get_by_role("link", name=re.compile("INBOX"))
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(inbox_link).to_be_hidden()

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(inbox_link).to_be_visible()
    screenshot(phone, "menu-phone-light")
    phone.keyboard.press("Escape")
    expect(inbox_link).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()

    menu.click()
    expect(inbox_link).to_be_visible()
    inbox_link.click()  # a folder chosen: the new page starts with the menu closed
    phone.wait_for_load_state()
    expect(phone.locator(".folders").get_by_role("link", name=re.compile("INBOX"))).to_be_hidden()

    desktop = sign_in("alice@example.test", viewport=DESKTOP)
    expect(desktop.get_by_role("button", name="Folders")).to_be_hidden()
    sidebar = desktop.locator(".folders")
    expect(sidebar.get_by_role("link", name=re.compile("INBOX"))).to_be_visible()
